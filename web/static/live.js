// Pen dock page: redraws the state band, the reasons and their facts from /api/status as
// soon as the dock changes (a bounded long-poll, see appliance/page/live.py), ticks the
// running session's timer, refreshes the day's log and events when something happened,
// and prints. Mirrors appliance/page/view.py live_state(); keep the two in step.
(function () {
  "use strict";
  var RETRY_MS = 1000;      // after an error, or when the page has no long-poll slot free
  var TICK_MS = 1000;
  var LIGHT_TONES = { green: "free", amber: "waiting", red: "stop", blue: "out", off: "waiting" };
  var TONE_WORDS = { free: "FREE", waiting: "WAITING for you", stop: "STOP", out: "IN USE", down: "NOT ANSWERING" };
  var TONE_TITLES = { free: "Free", waiting: "Waiting", stop: "STOP", out: "In use", down: "No answer" };
  // Which locks are a stop, and which a manager may override: the rules' own tables
  // (appliance/core/rules.py), served by the page in #live's data-rules, never copied here.
  var RED_CODES = [];
  var OVERRIDABLE = [];
  var KIND_WORDS = { lock: "Holds the pen", overridden: "Overridden", warning: "Note" };
  var WORDS = {};
  var DATES = null; // the clinic's weekday and month names (appliance/core/dates.py date_names)
  var I18N = {};    // English -> the clinic's language (appliance/page/i18n.py JS_MESSAGES)

  // The page's language: t("for {ref}, {area}", {ref: ..., area: ...}).
  function t(text, values) {
    var out = I18N[text] || text;
    if (values) Object.keys(values).forEach(function (key) { out = out.split("{" + key + "}").join(values[key]); });
    return out;
  }

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // "12 min 08 s": time out of the cradle, never read as a time of day (view.py out_words).
  function outWords(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var s = seconds % 60;
    return t("{minutes} min {seconds} s", { minutes: Math.floor(seconds / 60), seconds: (s < 10 ? "0" : "") + s });
  }

  // What the timer means (view.py timer_note): needling is read when the pen is back.
  function timerNote(out, limit) {
    var values = { limit: Math.floor(limit / 60) };
    return out > limit ? t("out longer than the {limit}-minute needling limit: the needling is checked when the pen is back", values)
                       : t("the needling is measured when the pen is back (the {limit}-minute needling limit)", values);
  }

  // "Friday 11 December 2026", as appliance/core/dates.py long_date writes it.
  function longDate(iso) {
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(iso || ""));
    if (!m || !DATES) return String(iso || "");
    var day = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
    return DATES.pattern.replace("{wd}", DATES.weekdays[(day.getUTCDay() + 6) % 7])
      .replace("{d}", String(Number(m[3]))).replace("{m}", DATES.months[Number(m[2]) - 1]).replace("{y}", m[1]);
  }

  // A reason's facts in the page's language (view.py facts_sentence); "" in English, where
  // the daemon's own sentence (detail_words) is the page's.
  function factsOf(code, f) {
    if (!f || !Object.keys(I18N).length) return "";
    var day = function (key) { return longDate(f[key]); };
    if (code === "client_interval" && f.last_date) {
      return t("Last treated on {last} ({days} days ago); next eligible date {next}.",
        { last: day("last_date"), days: f.days_since, next: day("next_eligible_date") });
    }
    if (code === "interval_short" && f.last_date) {
      return t("Last treated on {last} ({days} days ago); recommended date was {date}.",
        { last: day("last_date"), days: f.days_since, date: day("recommended_date") });
    }
    if (code === "course_complete" && "treatments_in_window" in f) {
      return t("{count} treatments of this area in the last {days} days (a course is {course}).",
        { count: f.treatments_in_window, days: f.course_window_days, course: f.course_max_treatments });
    }
    if (code === "battery_low" && "battery_percent" in f) {
      return t("Battery {percent}% ({volts} V), charging in the cradle: about {minutes} minutes to go to the " +
        "{minimum} V minimum; the dock frees the pen by itself then.",
        { percent: f.battery_percent, volts: number(f.battery_mv / 1000, 2), minutes: f.charge_minutes || 0,
          minimum: number((f.min_mv || 0) / 1000, 2) });
    }
    if (code === "service_due" && "motor_hours_since_service" in f) {
      return t("{hours} motor hours since the last service (service every {every} hours).",
        { hours: number(f.motor_hours_since_service), every: f.service_interval_hours });
    }
    if (code === "pen_fault" && f.faults && f.faults.length) {
      return t("The pen reports: {faults} (at {celsius} °C).",
        { faults: f.faults.join(", "), celsius: Math.round(f.temperature_c || 0) });
    }
    if (code === "cartridge_reused") {
      var text = t("Cartridge {serial} has {strokes} strokes on it.",
        { serial: f.cartridge, strokes: number(f.cartridge_strokes || 0) });
      if ("seen_session" in f) text += " " + t("It was on session {session} on {date}.", { session: f.seen_session, date: day("seen_date") });
      return text;
    }
    if (code === "checklist_missing" && f.missing && f.missing.length) {
      return t("Not ticked: {items}.", { items: f.missing.map(function (i) { return t(CHECKLIST[i] || i); }).join(", ") });
    }
    if (code === "session_overrun" && "out_minutes" in f) {
      return t("Out {minutes} minutes (a session should take under {limit}).", { minutes: f.out_minutes, limit: f.limit_minutes });
    }
    return "";
  }

  // Whom the pen is for (view.py who_words); the minutes out are added by tick().
  function whoOf(status) {
    var session = status.session;
    if (!status.docked && session) {
      return t("for {ref}, {area}", { ref: session.client_ref || t("no client named"), area: t(session.area || "-") });
    }
    var nc = status.next_client;
    return nc && nc.ref ? t("for {ref}, {area}", { ref: nc.ref, area: t(nc.area || "-") }) : "";
  }

  // An interval hold's date to rebook on (view.py next_date_words).
  function nextDateOf(status) {
    if (!status.docked || (status.locks || []).indexOf("client_interval") < 0) return "";
    var found = (status.reasons || []).filter(function (r) {
      return r.code === "client_interval" && r.detail && r.detail.next_eligible_date;
    });
    return found.length ? t("Next eligible date: {date}", { date: longDate(found[0].detail.next_eligible_date) }) : "";
  }

  var CHECKLIST = { screened: "Contraindications screened", "test-area": "Test area done" };

  // 1234 -> "1,234" or "1.234": the page's language (the <html lang>).
  function number(value, digits) {
    var lang = document.documentElement.lang || "en";
    return Number(value).toLocaleString(lang, digits ? { minimumFractionDigits: digits, maximumFractionDigits: digits } : {});
  }

  function toneOf(status) {
    if (LIGHT_TONES[status.light]) return LIGHT_TONES[status.light];
    if (!status.docked) return status.session ? "out" : "waiting";
    if (!status.held) return "free";
    var locks = status.locks || [];
    return RED_CODES.some(function (c) { return locks.indexOf(c) >= 0; }) ? "stop" : "waiting";
  }

  function stateOf(status) {
    var reasons = (status.reasons || []).map(function (r) {
      return { kind: r.kind || "lock", words: t(r.words || ""), action: t(r.action || ""),
               facts: factsOf(r.code, r.detail) || r.detail_words || "", code: r.code || "",
               shownUndocked: r.shown_undocked !== false };
    });
    (status.overridden || []).forEach(function (code) {
      reasons.push({ kind: "overridden", words: t(WORDS[code] || code.replace(/_/g, " ")),
                     action: t("Overridden by a manager for this session."), facts: "", code: code });
    });
    var tone = toneOf(status);
    var s = { tone: tone, headline: "", detail: "", reasons: reasons, facts: [], running: null,
              locks: status.locks || [], nextClient: status.next_client,
              who: whoOf(status), nextDate: nextDateOf(status) };
    var session = status.session;
    if (!status.docked && session) {
      s.running = { out: Number(session.out_seconds || 0), limit: Number(session.needling_limit_seconds || 1800) };
      s.headline = t("Session in progress");
      s.detail = t("{ref}, {area}: out {out}. Put the pen back in the cradle when done.",
        { ref: session.client_ref || t("No client named"), area: t(session.area || "-"), out: outWords(s.running.out) });
      s.reasons = reasons.filter(function (r) { return r.kind !== "lock"; });
    } else if (!status.docked) {
      s.headline = t("No pen in the cradle"); s.detail = t("Put the pen in the cradle.");
      // The daemon flags the reasons the headline already says (appliance/daemon/status.py).
      s.reasons = reasons.filter(function (r) { return r.shownUndocked; });
    } else if (status.held) {
      var locks = reasons.filter(function (r) { return r.kind === "lock"; });
      var red = locks.filter(function (r) { return RED_CODES.indexOf(r.code) >= 0; });
      if (!red.length) red = locks;
      s.headline = tone === "stop" ? t("Pen held: {words}", { words: red.length ? red[0].words : t("see below") })
                                   : t("Pen held until you: {action}", { action: locks.length ? locks[0].action : t("see below") });
      s.detail = t("The pen stays in the cradle until every lock below is cleared.");
    } else {
      s.headline = t("Pen free to lift");
      s.detail = t("All checks passed: lift the pen to start the session.");
    }
    var nc = status.next_client;
    var ticked = (nc && (nc.checklist || []).map(function (c) { return t(CHECKLIST[c] || c); }).join(", ")) ||
      t("checklist not ticked");
    s.facts.push([t("Next client"), nc ? t("{ref}, {area} ({ticked})", { ref: nc.ref, area: t(nc.area), ticked: ticked })
                                       : t("none named")]);
    var c = status.cartridge;
    if (c) {
      var text = t("{serial} ({strokes} strokes)", { serial: c.serial, strokes: number(c.strokes) });
      if ("authenticated" in c) text += c.authenticated ? t(", genuine") : t(", NOT authenticated");
      s.facts.push([t("Cartridge"), text]);
    } else {
      s.facts.push([t("Cartridge"), t("none fitted")]);
    }
    var pen = status.pen;
    if (pen) {
      var volts = number(Math.round(pen.battery_mv / 10) / 100, 2) + " V";
      s.facts.push([t("Pen battery"), "battery_percent" in pen ? t("{percent}% ({volts}), {left} sessions left",
        { percent: pen.battery_percent, volts: volts, left: pen.sessions_left || 0 }) : volts]);
      if ("hours_to_service" in pen) {
        s.facts.push([t("Service"), pen.hours_to_service > 0 ? t("due in {hours} motor hours", { hours: number(pen.hours_to_service) })
                                                              : t("due now")]);
      }
    }
    var trusted = status.clock_synced && status.clock_trusted !== false;
    s.facts.push([t("Dock clock"), String(status.now || "").slice(0, 16).replace("T", " ") +
      (trusted ? "" : t(" (NOT known to be right)"))]);
    var fleet = status.fleet;
    if (fleet && typeof fleet === "object") {
      var peers = fleet.peers, said = t("sharing history");
      if (Array.isArray(peers)) {
        var online = peers.filter(function (p) { return typeof p !== "object" || p.online !== false; }).length;
        said = t("{online} of {total} others online", { online: online, total: peers.length });
      }
      if (fleet.connected === false) said += t("; not connected");
      if (fleet.stale) said += t("; history may be out of date");
      if ((fleet.kicked || 0) >= 3) {
        said += t("; knocked off the broker {times} times lately (is another device using its login?)",
          { times: fleet.kicked });
      }
      s.facts.push([t("Clinic docks"), said]);
      if ((fleet.equivocations || 0) > 0) {  // as appliance/page/view.py's fleet_alarm
        s.facts.push([t("Clinic alarm"), t("ALARM: a clinic dock's key signed two different events for one place " +
          "in its record ({count} seen): its key may be stolen. Both were merged; see " +
          "`pendock fleet` and ask the technician to provision that dock again.", { count: fleet.equivocations })]);
      }
    }
    s.updated = String(status.now || "").slice(11, 19);
    return s;
  }

  function downState(headline, detail) {
    return { tone: "down", headline: headline, detail: detail, reasons: [], facts: [], running: null, locks: [],
             who: "", nextDate: "" };
  }

  // -- drawing ------------------------------------------------------------------------------

  var lastSaid = "";
  var running = null, runningAt = 0, whoBase = "";
  var titleRest = document.title.replace(/^[^·]*· /, "");

  function setText(id, text) { var node = $(id); if (node && node.textContent !== text) node.textContent = text; }

  function drawBand(s) {
    var live = $("live"), band = $("band");
    if (!live || !band) return;
    live.className = live.className.replace(/\btone-\w+/, "tone-" + s.tone);
    live.setAttribute("data-tone", s.tone);
    band.className = "band band-" + s.tone;
    band.setAttribute("data-tone", s.tone);
    setText("band-word", t(TONE_WORDS[s.tone]));
    setText("live-headline", s.headline);
    whoBase = s.who;
    setText("band-who", s.who);
    $("band-who").hidden = !s.who;
    setText("band-date", s.nextDate);
    $("band-date").hidden = !s.nextDate;
    document.title = t(TONE_TITLES[s.tone]) + " · " + titleRest;
    var icon = $("favicon");
    if (icon) {
      var href = icon.getAttribute("href").replace(/icon-\w+\.svg/, "icon-" + s.tone + ".svg");
      if (href !== icon.getAttribute("href")) icon.setAttribute("href", href);
    }
    running = s.running; runningAt = Date.now();
    $("band-timer").hidden = !running;
    tick();
    // The live region says what changed, once: never the whole panel every second.
    var said = t(TONE_WORDS[s.tone]) + ". " + s.headline;
    if (said !== lastSaid) {
      if (lastSaid) setText("live-announce", said);
      lastSaid = said;
    }
  }

  function reasonItem(r, wall, bandTone) {
    var tone = r.kind !== "lock" ? r.kind : (bandTone === "stop" && RED_CODES.indexOf(r.code) >= 0 ? "stop" : "wait");
    var item = el("li", "reason reason-" + r.kind + " reason-" + tone);
    item.setAttribute("data-code", r.code);
    if (!wall) item.appendChild(el("span", "reason-kind", t(KIND_WORDS[r.kind] || "Note")));
    item.appendChild(el("span", "reason-words", r.words));
    if (r.facts) item.appendChild(el("span", "reason-facts", r.facts));
    if (!wall) item.appendChild(el("span", "reason-action", (r.kind === "overridden" ? "" : t("What to do: ")) + r.action));
    return item;
  }

  function sameList(list, items) {
    var key = JSON.stringify(items);
    if (list.getAttribute("data-key") === key) return true;
    list.setAttribute("data-key", key);
    return false;
  }

  function drawBody(s) {
    var wall = $("live") && $("live").getAttribute("data-wall") === "yes";
    var list = $("live-reasons");
    if (list) {
      var shown = wall ? s.reasons.filter(function (r) { return r.kind === "lock"; }) : s.reasons;
      if (!sameList(list, [s.tone, shown])) {
        list.replaceChildren.apply(list, shown.map(function (r) { return reasonItem(r, wall, s.tone); }));
      }
    }
    setText("live-detail", s.detail);
    var facts = $("live-facts");
    if (facts && !sameList(facts, s.facts)) {
      facts.replaceChildren.apply(facts, s.facts.map(function (f) {
        var row = el("div");
        row.appendChild(el("dt", "", f[0]));
        row.appendChild(el("dd", "", f[1]));
        return row;
      }));
    }
    drawForms(s);
  }

  function drawForms(s) {
    var form = $("override-form"), none = $("override-none"), select = $("code");
    if (form && none && s.tone !== "down") {
      var active = OVERRIDABLE.filter(function (c) { return s.locks.indexOf(c) >= 0; });
      var typing = document.activeElement && form.contains(document.activeElement);
      if (!typing) {
        form.hidden = active.length === 0;
        none.hidden = active.length > 0;
        if (active.length && select && active.indexOf(select.value) < 0) select.value = active[0];
      }
    }
    var clear = $("clear-client-form");
    if (clear && s.tone !== "down") clear.hidden = !s.nextClient;
  }

  function tick() {
    if (!running) return;
    var out = running.out + (Date.now() - runningAt) / 1000;
    setText("timer-out", outWords(out));
    setText("timer-note", timerNote(out, running.limit));
    if (whoBase) setText("band-who", t("{who}, out {minutes} min", { who: whoBase, minutes: Math.floor(out / 60) }));
  }

  // -- the log below: fetched again when something happened --------------------------------

  var lastEventKey = null, refreshing = false;

  function eventKey(status) {
    return [status.light, (status.locks || []).join(","), status.session && status.session.id,
            status.last_session && status.last_session.id, status.next_client && status.next_client.ref,
            (status.overridden || []).join(",")].join("|");
  }

  function refreshDay(status) {
    var day = $("day");
    if (!day || day.getAttribute("data-today") !== "yes") return;
    var key = eventKey(status);
    if (lastEventKey === null) { lastEventKey = key; return; }
    if (key === lastEventKey || refreshing) return;
    lastEventKey = key;
    refreshing = true;
    fetch("/", { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        ["day", "events"].forEach(function (id) {
          var now = $(id), then = fresh.getElementById(id);
          if (now && then && document.activeElement && now.contains(document.activeElement)) return;
          if (now && then) now.replaceWith(document.importNode(then, true));
        });
        bindPrint();
      })
      .catch(function () {})
      .then(function () { refreshing = false; });
  }

  // -- asking the page ---------------------------------------------------------------------

  var version = "";

  function poll() {
    var stamp = $("live-updated");
    var again = function (ms) { setTimeout(poll, ms); };
    var url = "/api/status" + (version ? "?wait=" + encodeURIComponent(version) : "");
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401) {
          var s = downState(t("Logged out"), t("Your login has ended (logged out, or the page restarted). Reload the page to log in again."));
          drawBand(s); drawBody(s);
          if (stamp) stamp.textContent = "";
          return; // stop asking: nothing more to show until a login
        }
        return response.json().then(function (body) {
          if (response.ok) {
            var s = stateOf(body);
            drawBand(s); drawBody(s);
            noteNewSession(body);
            refreshDay(body);
            if (stamp) stamp.textContent = t("Updated {time} (dock clock)", { time: s.updated });
            var next = response.headers.get("X-Status-Version") || "";
            var waited = response.headers.get("X-Status-Wait") === "yes";
            version = next;
            again(waited || !version ? 0 : RETRY_MS);
          } else {
            var d = downState(t("Dock not answering"), t("The page cannot reach the dock, so the pen's state is unknown. The log below is still the record. If this lasts, restart the dock or call the technician."));
            drawBand(d); drawBody(d);
            version = "";
            again(RETRY_MS);
          }
        });
      })
      .catch(function () {
        var d = downState(t("Page not answering"), t("This tablet cannot reach the dock's page. Check the network; the page retries by itself."));
        drawBand(d); drawBody(d);
        version = "";
        again(RETRY_MS);
      });
  }

  function noteNewSession(status) {
    var day = $("day"), notice = $("new-session");
    if (!day || !notice || day.getAttribute("data-today") !== "yes") return;
    var known = Number(day.getAttribute("data-last-session") || 0);
    var session = status.last_session, last = session && session.id;
    if (!last || last <= known) return;
    // The session's end in one line, with the way to its aftercare card (none without a client).
    var outcome = { completed: "Completed", interrupted: "Interrupted" }[session.outcome] || session.outcome || "";
    setText("new-session-words", t("Session ended: {ref}, {area}, {minutes} min needling ({outcome}).", {
      ref: session.client_ref || t("no client named"), area: t(session.area || "-"),
      minutes: Math.round((session.needling_seconds || 0) / 60), outcome: t(outcome) }));
    var card = $("new-session-aftercare");
    if (card) {
      card.hidden = !session.client_ref;
      card.setAttribute("href", "/sessions/" + encodeURIComponent(last) + "/aftercare");
    }
    notice.hidden = false;
  }

  function bindPrint() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-print]"), function (button) {
      if (button.getAttribute("data-bound")) return;
      button.setAttribute("data-bound", "yes");
      button.addEventListener("click", function () { window.print(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panel = $("live");
    if (panel) {
      try { WORDS = JSON.parse(panel.getAttribute("data-words") || "{}"); } catch (e) { WORDS = {}; }
      try {
        var table = JSON.parse(panel.getAttribute("data-rules") || "{}");
        RED_CODES = table.stop || [];
        OVERRIDABLE = table.overridable || [];
      } catch (e) { RED_CODES = []; OVERRIDABLE = []; }
      try { DATES = JSON.parse(panel.getAttribute("data-dates") || "null"); } catch (e) { DATES = null; }
      try { I18N = JSON.parse(panel.getAttribute("data-i18n") || "{}"); } catch (e) { I18N = {}; }
      var seconds = $("timer-out");
      if (seconds && !$("band-timer").hidden) {
        running = { out: Number(seconds.getAttribute("data-seconds")), limit: Number($("timer-note").getAttribute("data-limit")) };
        // whoBase stays empty until the first answer: the server's words stand till then.
        runningAt = Date.now();
      }
      lastSaid = ($("band-word") ? $("band-word").textContent : "") + ". " + ($("live-headline") ? $("live-headline").textContent : "");
      setInterval(tick, TICK_MS);
      poll();
    }
    bindPrint();
    // A narrow screen shows part of the day's timeline: start with "now" in view.
    var scroller = document.querySelector(".timeline-scroll"), now = document.querySelector(".now-line");
    if (scroller && now && scroller.scrollWidth > scroller.clientWidth) {
      var box = now.getBoundingClientRect(), frame = scroller.getBoundingClientRect();
      scroller.scrollLeft += box.left - frame.left - scroller.clientWidth * 0.7;
    }
    // A form error: focus its field (autofocus does not always survive the layout).
    var invalid = document.querySelector("[aria-invalid=true][autofocus]");
    if (invalid) invalid.focus();
  });
})();
