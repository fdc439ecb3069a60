"""What every route of one page app shares (the record, the daemon, the caches, the
zone), kept on the app (`app.extensions`) instead of in a closure, so the routes can live
in blueprints and several apps (tests) can live in one process."""
from __future__ import annotations

import logging
import threading
from datetime import date, datetime
from pathlib import Path
from typing import Callable

from flask import current_app, g, request

from appliance.daemon.control import ControlError
from appliance.page import auth
from appliance.page import view as web_view
from appliance.page.caches import DayCache, DayRecord, HealthCache, StatusCache
from appliance.page.live import StatusWaiters
from appliance.record.store import Store

log = logging.getLogger("pendock.page")

ControlFactory = Callable[[str], object]  # via -> an object with .call(cmd, **args)
KEY = "pendock"
LONG_POLL_SLOTS = 3  # requests that may wait for a change at once (of the page's 6 threads)
HEALTH_FRESH_S = 1.0  # /healthz answers from what the daemon said this recently


class PageContext:
    """One page app's record, daemon and caches. `store` None: a read-only Store of
    `data_dir`, opened on first use, one per process."""

    def __init__(self, config, data_dir: Path, make_client: ControlFactory, store: Store | None,
                 throttle: auth.LoginThrottle, status_fresh_s: float, days_kept: int,
                 health_fresh_s: float = HEALTH_FRESH_S):
        self.config = config
        self.tz = config.tz
        self.areas = tuple(config.areas.max_depth_mm)
        self.data_dir = data_dir
        self.make_client = make_client
        self.logins = auth.SessionTable(max_seconds=config.web.session_hours * 3600)
        self.throttle = throttle
        self.audit_gate = auth.AuditGate()  # what unauthenticated requests may write (S8)
        self._store = store
        self._open_lock = threading.Lock()
        self.status_cache = StatusCache(lambda: make_client("page").call("status"), status_fresh_s)
        self.day_cache = DayCache(self.record, days_kept)
        self.waiters = StatusWaiters(LONG_POLL_SLOTS)
        self.health = HealthCache(lambda: make_client("page healthz").call("status"), health_fresh_s)

    # -- the record and the daemon -----------------------------------------------------

    def record(self) -> Store:
        found = self._store
        if found is None:
            with self._open_lock:
                if self._store is None:
                    self._store = Store.open(self.data_dir, readonly=True)
                found = self._store
        return found

    def daemon(self):
        """The daemon's socket, saying which logged-in user asks."""
        who = g.get("login")
        return self.make_client(f"page user {who.name}" if who else "page")

    def live_status(self) -> dict | None:
        try:
            return self.status_cache.get()
        except ControlError as error:
            log.warning("status: %s", error)
            return None

    def now_of(self, status: dict | None) -> datetime:
        if status and status.get("now"):
            try:
                return datetime.fromisoformat(status["now"])
            except ValueError:
                pass
        return datetime.now(self.tz)

    def day_param(self) -> date:
        """The `date` query parameter, or the daemon's today (raises BadParameter)."""
        text = request.args.get("date")
        if text:
            return web_view.parse_day(text, datetime.now(self.tz).date())
        return self.now_of(self.live_status()).date()

    # -- one day's pieces, each made once per change of the record --------------------

    def day_record(self, day: date) -> DayRecord:
        return self.day_cache.day(day)

    def rows_of(self, found: DayRecord) -> tuple:
        return found.piece("rows", lambda sessions: tuple(web_view.session_row(s, self.tz)
                                                          for s in sessions))

    def timeline_of(self, found: DayRecord, day: date, now: datetime, is_today: bool = False) -> web_view.Timeline:
        # An open session's bar grows with the clock: then the drawing is kept only for
        # one `now` (the daemon's, which changes with each status call, 4 times a second).
        # Today's "now" marker moves with the minute.
        moment = now if found.has_open else (now.replace(second=0, microsecond=0) if is_today else None)
        from appliance.core.dates import long_date
        from appliance.page import i18n

        tr, locale = i18n.translator(), self.config.clinic.locale
        return found.piece("timeline", lambda sessions: web_view.timeline(sessions, day, self.tz, now, tr,
                                                                          long_date(day, locale)),
                           moment=moment)

    def json_of(self, found: DayRecord) -> str:
        return found.piece("json", lambda sessions: current_app.json.dumps(
            [web_view.contract_session(s) for s in sessions]) + "\n")


def here() -> PageContext:
    """The context of the app serving this request."""
    return current_app.extensions[KEY]
