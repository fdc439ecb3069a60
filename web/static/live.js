// Pen dock page: redraws the live dock state from /api/status every second, with no
// reload, and prints the aftercare card. Mirrors appliance/page/view.py live_state().
(function () {
  "use strict";
  var POLL_MS = 1000;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  var WORDS = {};

  function stateOf(status) {
    var reasons = (status.reasons || []).map(function (r) {
      return { kind: r.kind || "lock", words: r.words || "", action: r.action || "",
               shownUndocked: r.shown_undocked !== false };
    });
    (status.overridden || []).forEach(function (code) {
      reasons.push({ kind: "overridden", words: WORDS[code] || code.replace(/_/g, " "), action: "Overridden by a manager for this session." });
    });
    var s = { tone: "", headline: "", detail: "", reasons: reasons, facts: [] };
    var session = status.session;
    if (!status.docked && session) {
      s.tone = "out";
      s.headline = "Pen out: session in progress";
      s.detail = (session.client_ref || "No client named") + ", " + (session.area || "-") + ", out " +
        Math.floor((session.out_seconds || 0) / 60) + " min. Put the pen back in the cradle when done.";
      s.reasons = reasons.filter(function (r) { return r.kind !== "lock"; });
    } else if (!status.docked) {
      s.tone = "held"; s.headline = "No pen in the cradle"; s.detail = "Put the pen in the cradle.";
      // The daemon flags the reasons the headline already says (appliance/daemon/status.py).
      s.reasons = reasons.filter(function (r) { return r.shownUndocked; });
    } else if (status.held) {
      s.tone = "held"; s.headline = "Pen HELD";
      s.detail = "The pen stays in the cradle until every lock below is cleared.";
    } else {
      s.tone = "free"; s.headline = "Pen FREE to lift";
      s.detail = "All checks passed: lift the pen to start the session.";
    }
    var nc = status.next_client;
    s.facts.push(["Next client", nc ? nc.ref + ", " + nc.area + " (" +
      ((nc.checklist || []).join(", ") || "checklist not ticked") + ")" : "none named"]);
    var c = status.cartridge;
    s.facts.push(["Cartridge", c ? c.serial + " (" + Number(c.strokes).toLocaleString("en") + " strokes)" : "none fitted"]);
    if (status.pen) s.facts.push(["Pen battery", (status.pen.battery_mv / 1000).toFixed(2) + " V"]);
    s.facts.push(["Dock clock", String(status.now || "").slice(0, 16).replace("T", " ") +
      (status.clock_synced ? "" : " (NOT known to be right)")]);
    return s;
  }

  function downState(headline, detail) {
    return { tone: "down", headline: headline, detail: detail, reasons: [], facts: [] };
  }

  var KIND_WORDS = { lock: "Holds the pen", overridden: "Overridden", warning: "Note" };

  function draw(panel, s) {
    panel.className = "live tone-" + s.tone;
    panel.setAttribute("data-tone", s.tone);
    document.getElementById("live-headline").textContent = s.headline;
    document.getElementById("live-detail").textContent = s.detail;
    var list = document.getElementById("live-reasons");
    list.replaceChildren.apply(list, s.reasons.map(function (r) {
      var item = el("li", "reason reason-" + r.kind);
      item.appendChild(el("span", "reason-kind", KIND_WORDS[r.kind] || "Note"));
      item.appendChild(el("span", "reason-words", r.words));
      item.appendChild(el("span", "reason-action", (r.kind === "overridden" ? "" : "What to do: ") + r.action));
      return item;
    }));
    var facts = document.getElementById("live-facts");
    facts.replaceChildren.apply(facts, s.facts.map(function (f) {
      var row = el("div");
      row.appendChild(el("dt", "", f[0]));
      row.appendChild(el("dd", "", f[1]));
      return row;
    }));
  }

  function noteNewSession(status) {
    var day = document.getElementById("day");
    var notice = document.getElementById("new-session");
    if (!day || !notice || day.getAttribute("data-today") !== "yes") return;
    var known = Number(day.getAttribute("data-last-session") || 0);
    var last = status.last_session && status.last_session.id;
    if (last && last > known) notice.hidden = false;
  }

  function poll(panel) {
    var stamp = document.getElementById("live-updated");
    var next = function () { setTimeout(function () { poll(panel); }, POLL_MS); };
    fetch("/api/status", { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401) {
          draw(panel, downState("Logged out", "Your login has ended (logged out, or the page restarted). Reload the page to log in again."));
          stamp.textContent = "";
          return; // stop polling: nothing more to show until a login
        }
        return response.json().then(function (body) {
          if (response.ok) {
            draw(panel, stateOf(body));
            noteNewSession(body);
          } else {
            draw(panel, downState("Dock not answering", "The page cannot reach the dock, so the pen's state is unknown. The log below is still the record. If this lasts, restart the dock or call the technician."));
          }
          stamp.textContent = "Updated " + new Date().toLocaleTimeString();
          next();
        });
      })
      .catch(function () {
        draw(panel, downState("Page not answering", "This tablet cannot reach the dock's page. Check the network; the page retries by itself."));
        next();
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.getElementById("live");
    if (panel) {
      try { WORDS = JSON.parse(panel.getAttribute("data-words") || "{}"); } catch (e) { WORDS = {}; }
      poll(panel);
    }
    Array.prototype.forEach.call(document.querySelectorAll("[data-print]"), function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
  });
})();
