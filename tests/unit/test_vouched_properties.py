"""S7 as a property: over any history of wall clock steps, NTP syncs of either kind, a
person's settings, RTCs (kept or flat) and reboots, no client is released before 21 days
of the time the dock could vouch for since the treatment, and that time is never more
than truly passed (appliance/core/vouched.py, daemon/clockwatch.py, record/clocked.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.core import rules
from appliance.core.model import History, Treatment
from appliance.core.vouched import SourceReading, Vouch
from appliance.daemon.clockwatch import ClockWatch
from appliance.record.clocked import VOUCH_EXACT, VOUCH_LOWER, revouched
from tests.unit.test_rules import CLIENT, CONFIG, PEN, ready

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
DAY = 86400.0
SLACK = timedelta(minutes=2)  # the sources' agreement window (vouched.AGREE)


@dataclass
class World:
    """The true time, and the dock's clocks as a Pi's would read it."""

    true: datetime = T0
    wall_error: timedelta = timedelta(0)
    mono: float = 5.0
    boot: int = 1
    syncs: int | None = None
    nts: bool = False
    rtc: str = "none"  # "none", "kept" (battery-backed: the true time), "flat" (lost its battery)

    def now(self) -> datetime:
        return self.true + self.wall_error

    def monotonic(self) -> float:
        return self.mono

    def boot_id(self) -> str:
        return f"boot-{self.boot}"

    def synced(self) -> bool:
        return self.syncs is not None

    def sync_mark(self) -> int | None:
        return self.syncs

    def time_sources(self) -> list[SourceReading]:
        rtc = {"none": None, "kept": self.true, "flat": datetime(2000, 1, 1, tzinfo=timezone.utc)}[self.rtc]
        return [SourceReading("nts", True, self.now() if self.nts else None),
                SourceReading("rtc", True, rtc if self.rtc != "flat" else None)]


@dataclass
class Session:
    true_start: datetime
    rule_time: datetime
    vouch: str
    boot: str


@dataclass
class Dock:
    world: World
    kept: list[Vouch] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    released: int = 0

    def __post_init__(self):
        self.watch = self._watch()

    def _watch(self) -> ClockWatch:
        return ClockWatch(self.world, kept=self.kept[-1] if self.kept else None, keep=self.kept.append)

    def observe(self):
        state = self.watch.observe()
        correction = self.watch.take_correction()
        if correction is not None:  # what the dock writes: record/clocked.py's re-dating
            for s in self.sessions:
                move = revouched(s.rule_time, s.vouch, s.boot, correction, state.effective_now, state.boot_id)
                if move is not None:
                    s.rule_time, s.vouch = move[0], VOUCH_EXACT
        return state

    def reboot(self, off_s: float, wall_error_days: float, rtc: str) -> None:
        w = self.world
        w.true += timedelta(seconds=off_s)
        w.mono, w.boot, w.syncs, w.nts, w.rtc = 5.0, w.boot + 1, None, False, rtc
        w.wall_error = timedelta(days=wall_error_days) if rtc != "kept" else timedelta(0)
        self.watch = self._watch()

    def treat(self) -> None:
        state = self.observe()
        self.sessions.append(Session(self.world.true, state.effective_now,
                                     VOUCH_EXACT if state.vouched_exact else VOUCH_LOWER, state.boot_id))

    def check(self) -> None:
        state = self.observe()
        now = state.effective_now
        for s in self.sessions:  # vouched time never counts more than truly passed
            assert now - s.rule_time <= (self.world.true - s.true_start) + SLACK
        treatments = tuple(Treatment(CLIENT.ref, CLIENT.area, s.rule_time) for s in self.sessions)
        decision = rules.decide(ready(), History(pen=PEN, treatments=treatments), CONFIG, now)
        if self.sessions and "client_interval" not in decision.locks:
            self.released += 1
            last = max(s.rule_time for s in self.sessions)
            assert (now.astimezone(CONFIG.tz).date() - last.astimezone(CONFIG.tz).date()).days >= 21
            for s in self.sessions:
                assert self.world.true - s.true_start > timedelta(days=20)


seconds = st.floats(min_value=0, max_value=30 * DAY, allow_nan=False)
days = st.floats(min_value=-400, max_value=400, allow_nan=False)
step = st.one_of(
    st.tuples(st.just("pass"), seconds),
    st.tuples(st.just("jump"), days),
    st.tuples(st.just("ntp"), days),  # a plain NTP answer: anything on the LAN can give it
    st.tuples(st.just("nts"), st.just(0.0)),
    st.tuples(st.just("person"), days),
    st.tuples(st.just("reboot"), seconds, days, st.sampled_from(["none", "kept", "flat"])),
    st.tuples(st.just("treat"), st.just(0.0)),
    st.tuples(st.just("check"), st.just(0.0)),
)


def run(history, initial_error_days: float) -> Dock:
    dock = Dock(World(wall_error=timedelta(days=initial_error_days)))
    for action, *args in history:
        w = dock.world
        if action == "pass":
            w.true += timedelta(seconds=args[0])
            w.mono += args[0]
        elif action in ("jump", "ntp"):
            w.wall_error += timedelta(days=args[0])
            w.nts = False
            if action == "ntp":
                w.syncs = (w.syncs or 0) + 1
        elif action == "nts":
            w.wall_error, w.nts, w.syncs = timedelta(0), True, (w.syncs or 0) + 1
        elif action == "person":  # `clock set`: refused below grounded vouched time (clock_commands.py)
            moment = w.true + timedelta(days=args[0])
            state = dock.observe()
            if not state.vouched_grounded or moment >= state.effective_now - SLACK:
                w.wall_error, w.nts = moment - w.true, False
                dock.watch.confirm("person")
        elif action == "reboot":
            dock.reboot(*args)
        elif action == "treat":
            dock.treat()
        dock.check()
    return dock


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=30), days)
def test_no_client_is_released_before_21_days_of_vouched_time(history, initial_error_days):
    run(history, initial_error_days)


def test_the_property_is_not_vacuous_time_that_passes_frees_the_client():
    """The negative control: 22 measured days free the client, in one boot and across a
    reboot with a kept RTC, so the property above is about holding only what is unproven."""
    one_boot = run([("nts", 0.0), ("treat", 0.0), ("pass", 22 * DAY), ("check", 0.0)], 0.0)
    assert one_boot.released >= 1
    rtc = run([("nts", 0.0), ("treat", 0.0), ("reboot", 22 * DAY, 0.0, "kept"), ("check", 0.0)], 0.0)
    assert rtc.released >= 1
    unproven = run([("treat", 0.0), ("jump", 22.0), ("ntp", 0.0), ("person", 30.0), ("check", 0.0)], 0.0)
    assert unproven.released == 0
