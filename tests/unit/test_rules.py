"""The treatment rules, one test per code, at the edges docs/clinical-basis.md sets."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.core import rules
from appliance.core.config import Areas, Config, Dock, replace_rules
from appliance.core.model import (
    CHECKLIST_ITEMS,
    CartridgeAuth,
    DockState,
    History,
    NextClient,
    OpenSession,
    PenReading,
    PenRecord,
    Treatment,
)
from appliance.core.rules import (
    DESCRIPTIONS,
    close_warnings,
    decide,
    eligible_dates,
    live_warnings,
    session_result,
)

NOW = datetime(2025, 3, 15, 10, 0, tzinfo=timezone.utc)
CONFIG = Config()
CLIENT = NextClient(ref="BK-1001", area="face", checklist=frozenset(CHECKLIST_ITEMS))
READING = PenReading(
    pen_serial=42, firmware="1.0", strokes=10_000, motor_seconds=7_200, cartridge_serial=9001,
    cartridge_strokes=0, max_depth_mm=0.0, battery_mv=4000, temperature_c=30.0,
)
GENUINE = CartridgeAuth("authentic", cartridge_id=9001, counter=15, maker="demo-maker")
PEN = PenRecord(serial=42, last_strokes=10_000, last_motor_seconds=7_200, service_motor_seconds=7_200)


def ready(**changes) -> DockState:
    """A docked pen that may be released: every test changes one thing from here."""
    return replace(DockState(docked=True, reading=READING, next_client=CLIENT, cartridge_auth=GENUINE),
                   **changes)


def treated(days_ago: float, client: str = "BK-1001", area: str = "face") -> Treatment:
    return Treatment(client_ref=client, area=area, started_at=NOW - timedelta(days=days_ago))


def history(*treatments: Treatment, **changes) -> History:
    return History(pen=PEN, treatments=treatments, **changes)


def codes(decision) -> set[str]:
    return set(decision.locks) | set(decision.warnings)


def test_a_good_setup_is_released_with_nothing_to_say():
    decision = decide(ready(), history(), CONFIG, NOW)
    assert decision == rules.Decision()
    assert not decision.held


# --- the pen and its reading -----------------------------------------------------------


def test_no_pen_is_the_only_finding_when_nothing_is_docked():
    state = DockState(docked=False, next_client=None, storage_ok=False, clock_synced=False)
    decision = decide(state, history(), CONFIG, NOW)
    assert decision.locks == ("no_pen",)
    assert decision.warnings == ()


def test_readout_error_holds_the_pen_and_still_judges_the_client():
    decision = decide(ready(reading=None, readout_error="crc"), history(treated(3)), CONFIG, NOW)
    assert decision.locks == ("readout_error", "client_interval")


def test_no_cartridge_holds_the_pen():
    decision = decide(ready(reading=replace(READING, cartridge_serial=0)), history(), CONFIG, NOW)
    assert decision.locks == ("no_cartridge",)


def test_cartridge_seen_on_an_earlier_session_is_reused():
    decision = decide(ready(), history(cartridge_used_before=True), CONFIG, NOW)
    assert decision.locks == ("cartridge_reused",)


def test_cartridge_with_its_own_strokes_is_reused():
    decision = decide(ready(reading=replace(READING, cartridge_strokes=1)), history(), CONFIG, NOW)
    assert decision.locks == ("cartridge_reused",)


# --- the cartridge's chip (hw/cartridge_auth.toml) ------------------------------------------


def test_a_genuine_chip_seen_for_the_first_time_frees_the_pen():
    assert decide(ready(), history(), CONFIG, NOW) == rules.Decision()
    assert decide(ready(), history(cartridge_counter_floor=16), CONFIG, NOW) == rules.Decision()


@pytest.mark.parametrize("auth", [
    CartridgeAuth("unauthentic", reason="forged"),
    CartridgeAuth("unauthentic", cartridge_id=9001, counter=0, reason="no uses left"),
    replace(GENUINE, cartridge_id=9002),  # the pen reports another serial than the chip proves
], ids=["forged", "counter-zero", "other-id"])
def test_an_unauthentic_chip_holds_the_pen_and_no_one_can_override_it(auth):
    state = ready(cartridge_auth=auth, overrides=frozenset({"cartridge_unauthentic"}))
    decision = decide(state, history(), CONFIG, NOW)
    assert decision.locks == ("cartridge_unauthentic",) and decision.overridden == ()
    with pytest.raises(ValueError, match="never"):
        rules.validate_override("cartridge_unauthentic")


@pytest.mark.parametrize("floor", [15, 14, 3])
def test_a_counter_that_did_not_go_down_is_a_reused_cartridge(floor):
    """The same cartridge id showed this dock a counter as low or lower before: a chip
    reset by a remanufacturer, or a clone, even with no session on the record."""
    decision = decide(ready(), history(cartridge_counter_floor=floor), CONFIG, NOW)
    assert decision.locks == ("cartridge_reused",)


def test_a_pen_without_the_chip_exchange_is_a_warning_unless_the_clinic_requires_it():
    from appliance.core.config import Cartridges

    unverified = ready(cartridge_auth=CartridgeAuth("unverified"))
    assert decide(unverified, history(), CONFIG, NOW).warnings == ("cartridge_unverified",)
    assert decide(ready(cartridge_auth=None), history(), CONFIG, NOW).warnings == ("cartridge_unverified",)
    strict = replace(CONFIG, cartridges=Cartridges(require_authentication=True))
    decision = decide(unverified.__class__(**{**unverified.__dict__, "overrides": frozenset({"cartridge_unverified"})}),
                      history(), strict, NOW)
    assert decision.locks == ("cartridge_unverified",) and decision.overridden == ()
    assert decide(ready(), history(), strict, NOW) == rules.Decision()


def test_no_cartridge_is_judged_without_its_chip():
    state = ready(reading=replace(READING, cartridge_serial=0), cartridge_auth=None)
    assert decide(state, history(), CONFIG, NOW).locks == ("no_cartridge",)


def test_pen_fault_holds_the_pen():
    for fault in ("stall", "overtemp", "chip"):
        decision = decide(ready(reading=replace(READING, faults=frozenset({fault}))), history(), CONFIG, NOW)
        assert decision.locks == ("pen_fault",), fault


@pytest.mark.parametrize("counter", ["strokes", "motor_seconds"])
def test_a_counter_lower_than_the_last_reading_is_a_rollback(counter):
    reading = replace(READING, **{counter: getattr(READING, counter) - 1})
    assert decide(ready(reading=reading), history(), CONFIG, NOW).locks == ("counter_rollback",)


def test_equal_counters_are_no_rollback():
    assert "counter_rollback" not in decide(ready(), history(), CONFIG, NOW).locks


def test_a_pen_never_seen_cannot_roll_back_or_be_due():
    reading = replace(READING, strokes=0, motor_seconds=10**9)
    decision = decide(ready(reading=reading), History(pen=None), CONFIG, NOW)
    assert decision.locks == ()


def test_history_of_another_pen_is_refused_loudly():
    with pytest.raises(ValueError, match="pen 7"):
        decide(ready(), History(pen=replace(PEN, serial=7)), CONFIG, NOW)


def test_service_due_after_the_service_interval_of_motor_time():
    limit = int(CONFIG.rules.service_interval_hours * 3600)
    at_limit = replace(READING, motor_seconds=PEN.service_motor_seconds + limit)
    over = replace(READING, motor_seconds=PEN.service_motor_seconds + limit + 1)
    assert decide(ready(reading=at_limit), history(), CONFIG, NOW).locks == ()
    assert decide(ready(reading=over), history(), CONFIG, NOW).locks == ("service_due",)


def test_battery_low_below_the_configured_minimum():
    minimum = CONFIG.rules.battery_min_mv
    assert decide(ready(reading=replace(READING, battery_mv=minimum)), history(), CONFIG, NOW).locks == ()
    low = ready(reading=replace(READING, battery_mv=minimum - 1))
    assert decide(low, history(), CONFIG, NOW).locks == ("battery_low",)


def test_storage_error_holds_the_pen():
    assert decide(ready(storage_ok=False), history(), CONFIG, NOW).locks == ("storage_error",)


def test_clock_unsynced_is_a_warning():
    decision = decide(ready(clock_synced=False), history(), CONFIG, NOW)
    assert decision.locks == ()
    assert decision.warnings == ("clock_unsynced",)


# --- the client --------------------------------------------------------------------------


def test_client_missing_holds_the_pen():
    decision = decide(ready(next_client=None), history(treated(3)), CONFIG, NOW)
    assert decision.locks == ("client_missing",)
    assert decision.warnings == ()


def test_client_interval_locks_at_20_days_and_releases_at_exactly_21():
    assert "client_interval" in decide(ready(), history(treated(20)), CONFIG, NOW).locks
    assert "client_interval" not in decide(ready(), history(treated(21)), CONFIG, NOW).locks


def test_client_interval_counts_calendar_days_of_the_dock():
    # Treated late on day 0; the pen frees early on day 21, the "next eligible date" shown.
    late = Treatment("BK-1001", "face", datetime(2025, 2, 22, 23, 30, tzinfo=timezone.utc))
    morning_21 = datetime(2025, 3, 15, 7, 0, tzinfo=timezone.utc)
    evening_20 = datetime(2025, 3, 14, 23, 59, tzinfo=timezone.utc)
    assert "client_interval" not in decide(ready(), history(late), CONFIG, morning_21).locks
    assert "client_interval" in decide(ready(), history(late), CONFIG, evening_20).locks
    assert eligible_dates(late.started_at, CONFIG).next_eligible == morning_21.date()


def test_client_interval_counts_the_latest_treatment():
    decision = decide(ready(), history(treated(60), treated(5), treated(40)), CONFIG, NOW)
    assert "client_interval" in decision.locks


def test_client_interval_works_across_time_zones():
    # Stored with another offset, the day is still the dock's day (UTC here): 22 Feb, 21 days.
    earlier = Treatment("BK-1001", "face", datetime(2025, 2, 22, 23, 0, tzinfo=timezone.utc).astimezone(
        timezone(timedelta(hours=8))))
    assert "client_interval" not in decide(ready(), history(earlier), CONFIG, NOW).locks
    a_day_later = replace(earlier, started_at=earlier.started_at + timedelta(days=1))
    assert "client_interval" in decide(ready(), history(a_day_later), CONFIG, NOW).locks


def test_a_treatment_in_the_future_holds_the_pen():
    """The clock went back: holding is the safe side."""
    assert "client_interval" in decide(ready(), history(treated(-2)), CONFIG, NOW).locks


def test_another_area_or_another_client_does_not_count():
    others = history(treated(1, area="neck"), treated(1, client="BK-2002"))
    assert decide(ready(), others, CONFIG, NOW) == rules.Decision()
    many = history(*[treated(d, area="neck") for d in range(30, 180, 30)], treated(1, area="neck"),
                   *[treated(d, client="BK-2") for d in range(1, 8)])
    assert codes(decide(ready(), many, CONFIG, NOW)) == set()


def test_interval_short_warns_at_27_days_not_28():
    at_27 = decide(ready(), history(treated(27)), CONFIG, NOW)
    assert at_27.warnings == ("interval_short",) and at_27.locks == ()
    assert decide(ready(), history(treated(28)), CONFIG, NOW).warnings == ()


def test_interval_short_is_not_repeated_under_the_interval_lock():
    decision = decide(ready(), history(treated(20)), CONFIG, NOW)
    assert decision.locks == ("client_interval",)
    assert decision.warnings == ()


def course(count: int, first_days_ago: int = 30, step: int = 25) -> tuple[Treatment, ...]:
    return tuple(treated(first_days_ago + i * step) for i in range(count))


def test_course_complete_when_six_earlier_treatments_in_180_days():
    five = decide(ready(), history(*course(5)), CONFIG, NOW)  # this would be the 6th
    six = decide(ready(), history(*course(6)), CONFIG, NOW)  # this would be the 7th
    assert "course_complete" not in five.warnings
    assert six.warnings == ("course_complete",)


def test_course_window_includes_day_180_and_not_day_181():
    five_recent = [treated(d) for d in (30, 60, 90, 120, 150)]
    assert "course_complete" in decide(ready(), history(*five_recent, treated(180)), CONFIG, NOW).warnings
    assert "course_complete" not in decide(ready(), history(*five_recent, treated(181)), CONFIG, NOW).warnings


def test_checklist_missing_is_a_warning_by_default():
    for ticked in (frozenset(), frozenset({"screened"}), frozenset({"test-area"})):
        decision = decide(ready(next_client=replace(CLIENT, checklist=ticked)), history(), CONFIG, NOW)
        assert decision.locks == ()
        assert decision.warnings == ("checklist_missing",)


def test_checklist_missing_is_a_lock_when_the_clinic_requires_it():
    strict = replace_rules(CONFIG, checklist_required=True)
    unticked = ready(next_client=replace(CLIENT, checklist=frozenset()))
    assert decide(unticked, history(), strict, NOW).locks == ("checklist_missing",)
    assert decide(ready(), history(), strict, NOW).locks == ()


def test_the_rules_follow_the_config():
    relaxed = replace_rules(CONFIG, min_interval_days=10, recommended_interval_days=14)
    assert decide(ready(), history(treated(12)), relaxed, NOW).warnings == ("interval_short",)
    assert decide(ready(), history(treated(12)), CONFIG, NOW).locks == ("client_interval",)


# --- overrides ---------------------------------------------------------------------------


def test_manager_override_lifts_client_interval_into_overridden():
    decision = decide(ready(overrides=frozenset({"client_interval"})), history(treated(5)), CONFIG, NOW)
    assert decision.locks == ()
    assert decision.overridden == ("client_interval",)
    assert not decision.held


def test_override_of_a_required_checklist():
    strict = replace_rules(CONFIG, checklist_required=True)
    state = ready(next_client=replace(CLIENT, checklist=frozenset()), overrides=frozenset({"checklist_missing"}))
    decision = decide(state, history(), strict, NOW)
    assert decision.locks == () and decision.overridden == ("checklist_missing",)


def test_an_override_without_its_lock_changes_nothing():
    decision = decide(ready(overrides=frozenset({"client_interval"})), history(), CONFIG, NOW)
    assert decision == rules.Decision()


@pytest.mark.parametrize("code", ["cartridge_reused", "counter_rollback", "service_due", "no_cartridge"])
def test_overrides_do_not_lift_locks_that_are_not_overridable(code):
    reading = {
        "cartridge_reused": replace(READING, cartridge_strokes=5),
        "counter_rollback": replace(READING, strokes=1),
        "service_due": replace(READING, motor_seconds=10**9),
        "no_cartridge": replace(READING, cartridge_serial=0),
    }[code]
    decision = decide(ready(reading=reading, overrides=frozenset({code})), history(), CONFIG, NOW)
    assert code in decision.locks
    assert decision.overridden == ()


def test_only_the_overridden_lock_is_lifted():
    state = ready(reading=replace(READING, cartridge_strokes=5), overrides=frozenset({"client_interval"}))
    decision = decide(state, history(treated(3)), CONFIG, NOW)
    assert decision.locks == ("cartridge_reused",)
    assert decision.overridden == ("client_interval",)


def test_validate_override_says_who_and_why_not():
    assert rules.validate_override("client_interval") == "manager"
    assert rules.validate_override("checklist_missing") == "manager"
    with pytest.raises(ValueError, match="never"):
        rules.validate_override("cartridge_reused")
    with pytest.raises(ValueError, match="rebaseline"):
        rules.validate_override("counter_rollback")
    with pytest.raises(ValueError, match="service-reset"):
        rules.validate_override("service_due")
    with pytest.raises(ValueError, match="overridable codes"):
        rules.validate_override("battery_low")
    with pytest.raises(ValueError, match="unknown"):
        rules.validate_override("nope")


def test_override_sets_are_consistent():
    assert not set(rules.OVERRIDABLE) & (rules.TECHNICIAN_ONLY | rules.NEVER_OVERRIDABLE)
    assert set(rules.OVERRIDABLE) | rules.TECHNICIAN_ONLY | rules.NEVER_OVERRIDABLE <= set(DESCRIPTIONS)


def test_every_finding_at_once_in_table_order_without_duplicates():
    reading = replace(READING, cartridge_strokes=3, faults=frozenset({"stall", "chip"}), strokes=1,
                      motor_seconds=10**9, battery_mv=3000)
    state = ready(reading=reading, next_client=replace(CLIENT, checklist=frozenset()),
                  storage_ok=False, clock_synced=False)
    decision = decide(state, history(*course(6, first_days_ago=3, step=20), cartridge_used_before=True),
                      CONFIG, NOW)
    assert decision.locks == ("cartridge_reused", "client_interval", "pen_fault", "counter_rollback",
                              "service_due", "battery_low", "storage_error")
    assert decision.warnings == ("course_complete", "clock_unsynced", "checklist_missing")


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(ready(), history(), CONFIG, NOW.replace(tzinfo=None))


# --- closing a session ---------------------------------------------------------------------


SESSION = OpenSession(
    id=1, started_at=NOW, client_ref="BK-1001", area="face", pen_serial=42, cartridge_serial=9001,
    strokes_start=10_000, motor_seconds_start=7_200, started_monotonic=0.0, session_tag=7,
)


def back(**changes) -> PenReading:
    """The pen as it comes back after a session of SESSION."""
    return replace(READING, cartridge_strokes=500, **{"session_tag": 7, **changes})


def test_a_normal_session_closes_clean_with_its_deltas():
    result = session_result(SESSION, back(strokes=12_500, motor_seconds=7_200 + 1_500, max_depth_mm=1.0),
                            CONFIG, NOW + timedelta(minutes=45), out_seconds=45 * 60)
    assert (result.needling_seconds, result.strokes, result.max_depth_mm) == (1_500, 2_500, 1.0)
    assert result.ended_at == NOW + timedelta(minutes=45)
    assert result.warnings == ()


def test_over_needling_after_30_minutes_not_at_30():
    at_30 = back(motor_seconds=SESSION.motor_seconds_start + 30 * 60)
    at_31 = back(motor_seconds=SESSION.motor_seconds_start + 31 * 60)
    just_over = back(motor_seconds=SESSION.motor_seconds_start + 30 * 60 + 1)
    assert close_warnings(SESSION, at_30, CONFIG, 0) == ()
    assert close_warnings(SESSION, at_31, CONFIG, 0) == ("over_needling",)
    assert close_warnings(SESSION, just_over, CONFIG, 0) == ("over_needling",)


@pytest.mark.parametrize("area, limit", sorted(CONFIG.areas.max_depth_mm.items()))
def test_depth_at_the_area_limit_is_fine_one_step_above_is_high(area, limit):
    session = replace(SESSION, area=area)
    assert close_warnings(session, back(max_depth_mm=limit), CONFIG, 0) == ()
    assert close_warnings(session, back(max_depth_mm=limit + 0.05), CONFIG, 0) == ("depth_high",)


def test_float_noise_cannot_flip_the_depth_rule():
    noisy_limit = 0.1 * 3 * 5  # 1.5000000000000002
    assert noisy_limit != 1.5
    assert close_warnings(SESSION, back(max_depth_mm=noisy_limit), CONFIG, 0) == ()
    assert close_warnings(SESSION, back(max_depth_mm=1.55 - 1e-9), CONFIG, 0) == ("depth_high",)


def test_depth_of_an_area_no_longer_configured_uses_the_shallowest_limit():
    session = replace(SESSION, area="lips")
    assert close_warnings(session, back(max_depth_mm=0.5), CONFIG, 0) == ()
    assert close_warnings(session, back(max_depth_mm=0.55), CONFIG, 0) == ("depth_high",)


def test_cartridge_changed_when_another_cartridge_comes_back():
    assert close_warnings(SESSION, back(cartridge_serial=9002), CONFIG, 0) == ("cartridge_changed",)
    assert close_warnings(SESSION, back(cartridge_serial=0), CONFIG, 0) == ("cartridge_changed",)


def test_forced_removal_is_noted():
    assert close_warnings(replace(SESSION, forced=True), back(), CONFIG, 0) == ("forced_removal",)


def test_session_overrun_after_90_minutes_out():
    assert close_warnings(SESSION, back(), CONFIG, 90 * 60) == ()
    assert close_warnings(SESSION, back(), CONFIG, 90 * 60 + 1) == ("session_overrun",)
    assert live_warnings(SESSION, 90 * 60, CONFIG) == ()
    assert live_warnings(SESSION, 90 * 60 + 1, CONFIG) == ("session_overrun",)


def test_start_warnings_carry_over_once_in_stable_order():
    session = replace(SESSION, warnings=("session_overrun", "interval_short", "clock_unsynced"), forced=True)
    reading = back(motor_seconds=SESSION.motor_seconds_start + 40 * 60)
    assert close_warnings(session, reading, CONFIG, 100 * 60) == (
        "interval_short", "clock_unsynced", "over_needling", "forced_removal", "session_overrun")


def test_a_rollback_mid_session_counts_zero_and_warns():
    reading = back(strokes=SESSION.strokes_start - 100, motor_seconds=SESSION.motor_seconds_start - 60)
    result = session_result(SESSION, reading, CONFIG, NOW, 600)
    assert (result.needling_seconds, result.strokes) == (0, 0)
    assert result.warnings == ("counter_rollback",)


def test_a_different_pen_coming_back_measures_nothing():
    reading = back(pen_serial=43, strokes=10**7, motor_seconds=10**7, max_depth_mm=3.0)
    result = session_result(SESSION, reading, CONFIG, NOW, 600)
    assert (result.needling_seconds, result.strokes, result.max_depth_mm) == (0, 0, None)
    assert result.warnings == ("pen_changed",)


# --- session registers (frame v2): a depth is trusted only under the session's tag ------------


def test_a_depth_under_the_sessions_tag_is_the_sessions_depth():
    result = session_result(SESSION, back(max_depth_mm=0.4), CONFIG, NOW, 600)
    assert (result.max_depth_mm, result.warnings) == (0.4, ())


@pytest.mark.parametrize("pen_tag, session_tag", [(8, 7), (None, 7), (7, None), (None, None)])
def test_a_register_under_another_tag_is_unmeasured_never_high(pen_tag, session_tag):
    """Body at 2.0 mm, then eyes: a pen whose registers were not zeroed for this session
    still says 2.0; that is recorded as unmeasured, not as an eyes session at 2.0 mm."""
    session = replace(SESSION, area="eyes", session_tag=session_tag)
    result = session_result(session, back(max_depth_mm=2.0, session_tag=pen_tag), CONFIG, NOW, 600)
    assert result.max_depth_mm is None
    assert result.warnings == ("depth_unmeasured",)


def test_a_version_1_pen_is_flagged_while_docked_and_its_sessions_record_no_depth():
    v1 = replace(READING, frame_version=1, session_tag=None)
    decision = decide(ready(reading=v1), history(), CONFIG, NOW)
    assert decision.warnings == ("pen_frame_v1",) and not decision.held
    assert decide(ready(), history(), CONFIG, NOW).warnings == ()
    result = session_result(replace(SESSION, session_tag=None), replace(v1, max_depth_mm=0.4), CONFIG, NOW, 600)
    assert (result.max_depth_mm, result.warnings) == (None, ("depth_unmeasured",))


def test_an_unreadable_return_keeps_what_can_be_known():
    session = replace(SESSION, forced=True, warnings=("interval_short",))
    result = session_result(session, None, CONFIG, NOW, 91 * 60)
    assert (result.needling_seconds, result.strokes) == (0, 0)
    assert result.warnings == ("interval_short", "forced_removal", "session_overrun")


# --- dates and input ------------------------------------------------------------------------


def test_eligible_dates_are_21_and_28_days_on_in_the_dock_time_zone():
    config = replace(CONFIG, dock=Dock(timezone="Australia/Sydney"))
    late_evening_utc = datetime(2025, 3, 1, 20, 0, tzinfo=timezone.utc)  # already 2 March in Sydney
    dates = eligible_dates(late_evening_utc, config)
    assert dates.next_eligible.isoformat() == "2025-03-23"
    assert dates.recommended.isoformat() == "2025-03-30"
    utc_dates = eligible_dates(late_evening_utc, CONFIG)
    assert utc_dates.next_eligible.isoformat() == "2025-03-22"


@pytest.mark.parametrize("ref", ["BK-1001", "a", "x" * 32, "2025.03_15-A"])
def test_booking_codes_are_accepted(ref):
    assert rules.validate_client_ref(ref) == ref.upper()  # accepted, in its canonical spelling


@pytest.mark.parametrize("ref, why", [
    ("", "empty"), ("Jane Doe", "space"), ("x" * 33, "33 characters"), ("jane@doe", "'@'"),
    ("Zoë", "'ë'"), ("BK 1", "space"), ("BK-1\n", "space"),
])
def test_names_and_odd_references_are_refused_with_the_reason(ref, why):
    with pytest.raises(ValueError, match="1 to 32 ASCII letters") as refused:
        rules.validate_client_ref(ref)
    assert why in str(refused.value)


def test_validate_area():
    assert rules.validate_area("neck", CONFIG) == "neck"
    assert rules.validate_area(" Neck ", CONFIG) == "neck"
    assert rules.validate_area(None, CONFIG) == "face"
    with pytest.raises(ValueError, match="face, forehead, eyes"):
        rules.validate_area("lips", CONFIG)
    only_body = replace(CONFIG, areas=Areas(default_area="body", max_depth_mm=MappingProxyType({"body": 2.0})))
    with pytest.raises(ValueError):
        rules.validate_area("face", only_body)


def test_parse_checklist():
    assert rules.parse_checklist("screened,test-area") == frozenset(CHECKLIST_ITEMS)
    assert rules.parse_checklist(" test-area , ") == frozenset({"test-area"})
    assert rules.parse_checklist("") == frozenset()
    with pytest.raises(ValueError, match="'tested'.*screened, test-area"):
        rules.parse_checklist("screened,tested")


# --- the descriptions ---------------------------------------------------------------------


README_CODES = {
    "no_pen": "lock", "readout_error": "lock", "no_cartridge": "lock", "cartridge_reused": "lock",
    "client_missing": "lock", "client_interval": "lock", "interval_short": "warning",
    "course_complete": "warning", "pen_fault": "lock", "counter_rollback": "lock", "service_due": "lock",
    "battery_low": "lock", "storage_error": "lock", "clock_unsynced": "warning",
    "over_needling": "warning", "depth_high": "warning", "session_overrun": "warning",
    "checklist_missing": "warning", "cartridge_changed": "warning", "forced_removal": "warning",
}


def test_every_readme_code_is_described_with_its_kind():
    for code, kind in README_CODES.items():
        assert rules.describe(code).kind == kind, code
    for code, (kind, words, action) in DESCRIPTIONS.items():
        assert kind in {"lock", "warning"}
        assert words.endswith(".") and action.endswith(".") and len(words) > 15 and len(action) > 15, code
    assert rules.describe("no_cartridge") == ("lock", "No needle cartridge is fitted.", "Fit a new sterile cartridge.")
    with pytest.raises(ValueError, match="unknown rule code"):
        rules.describe("bogus")


# --- properties -----------------------------------------------------------------------------


aware_times = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1),
                           timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=10))]))
readings = st.builds(
    PenReading, pen_serial=st.just(42), firmware=st.just("1.0"),
    strokes=st.integers(0, 10**6), motor_seconds=st.integers(0, 10**6),
    cartridge_serial=st.integers(0, 5), cartridge_strokes=st.integers(0, 3),
    max_depth_mm=st.floats(0, 3), battery_mv=st.integers(3000, 4200), temperature_c=st.just(30.0),
    faults=st.frozensets(st.sampled_from(["stall", "overtemp", "chip"])),
)
states = st.builds(
    DockState, docked=st.booleans(), reading=st.none() | readings,
    next_client=st.none() | st.builds(NextClient, ref=st.sampled_from(["A", "B"]),
                                      area=st.sampled_from(["face", "neck"]),
                                      checklist=st.frozensets(st.sampled_from(CHECKLIST_ITEMS))),
    overrides=st.frozensets(st.sampled_from(list(DESCRIPTIONS))),
    storage_ok=st.booleans(), clock_synced=st.booleans(),
    cartridge_auth=st.none() | st.builds(CartridgeAuth, verdict=st.sampled_from(["authentic", "unauthentic", "unverified"]),
                                         cartridge_id=st.integers(0, 5), counter=st.integers(0, 3)),
)
histories = st.builds(
    History,
    pen=st.none() | st.builds(PenRecord, serial=st.just(42), last_strokes=st.integers(0, 10**6),
                              last_motor_seconds=st.integers(0, 10**6),
                              service_motor_seconds=st.integers(0, 10**6)),
    cartridge_used_before=st.booleans(),
    cartridge_counter_floor=st.none() | st.integers(0, 4),
    treatments=st.lists(st.builds(Treatment, client_ref=st.sampled_from(["A", "B"]),
                                  area=st.sampled_from(["face", "neck"]), started_at=aware_times),
                        max_size=10).map(tuple),
)


@settings(max_examples=300, deadline=None)
@given(states, histories, aware_times, st.booleans())
def test_decide_is_deterministic_and_speaks_only_known_codes(state, past, now, strict):
    config = replace_rules(CONFIG, checklist_required=strict)
    decision = decide(state, past, config, now)
    assert decide(state, past, config, now) == decision
    every = decision.locks + decision.warnings + decision.overridden
    assert set(every) <= set(DESCRIPTIONS)
    assert len(every) == len(set(every))
    assert set(decision.overridden) <= set(rules.OVERRIDABLE) & state.overrides
    assert not {"cartridge_reused", "cartridge_unauthentic"} & set(decision.overridden)
    if not state.docked:
        assert decision.locks == ("no_pen",) and decision.warnings == () and decision.overridden == ()
    else:
        assert "no_pen" not in every
        assert ("readout_error" in decision.locks) == (state.reading is None)
