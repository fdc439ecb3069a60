"""The clinical decisions the dock's shell used to make inline, now pure rules: how a
session ends, when it is marked clock_unsynced, which dates it gives, and what
retention may purge."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone

import pytest

from appliance.core import rules
from appliance.core.config import Config, Store, replace_rules
from appliance.core.model import OpenSession, PenReading, SessionResult

STARTED = datetime(2025, 3, 15, 10, 0, tzinfo=timezone.utc)
SESSION = OpenSession(id=7, started_at=STARTED, client_ref="BK-1", area="face", pen_serial=42,
                      cartridge_serial=9001, strokes_start=100, motor_seconds_start=60,
                      started_monotonic=0.0)
READING = PenReading(pen_serial=42, firmware="1.0", strokes=900, motor_seconds=600,
                     cartridge_serial=9001, cartridge_strokes=800, max_depth_mm=0.5,
                     battery_mv=4000, temperature_c=30.0)
RESULT = SessionResult(ended_at=STARTED, needling_seconds=540, strokes=800, max_depth_mm=0.5,
                       warnings=("over_needling",))
TODAY = date(2025, 3, 15)


def test_the_pen_that_left_completes_its_session():
    assert rules.session_outcome(SESSION, READING) == "completed"


def test_another_pen_in_the_cradle_interrupts_the_session():
    assert rules.session_outcome(SESSION, replace(READING, pen_serial=43)) == "interrupted"


def test_a_session_closed_on_an_untrusted_clock_says_so_once():
    marked = rules.with_clock_warning(RESULT, clock_synced=False)
    assert marked.warnings == ("over_needling", "clock_unsynced")
    assert rules.with_clock_warning(marked, clock_synced=False) == marked
    assert rules.with_clock_warning(RESULT, clock_synced=True) == RESULT


def test_a_named_client_gets_the_eligible_dates():
    dates = rules.session_dates(SESSION, Config())
    assert dates == rules.eligible_dates(STARTED, Config())
    assert dates.next_eligible == date(2025, 4, 5)


def test_no_client_named_gives_no_dates():
    assert rules.session_dates(replace(SESSION, client_ref=""), Config()) is None


def test_retention_days_set_the_cutoff():
    config = replace(Config(), store=Store(retention_days=365))
    assert rules.purge_cutoff(TODAY, None, config) == date(2024, 3, 15)


def test_a_technicians_day_wins_over_retention():
    assert rules.purge_cutoff(TODAY, date(2020, 1, 1), Config()) == date(2020, 1, 1)


def test_keep_forever_needs_an_explicit_day():
    config = replace(Config(), store=Store(retention_days=0))
    with pytest.raises(rules.PurgeRefused, match="keep forever"):
        rules.purge_cutoff(TODAY, None, config)
    assert rules.purge_cutoff(TODAY, date(2020, 1, 1), config) == date(2020, 1, 1)


@pytest.mark.parametrize("window, interval", [(180, 28), (20, 40)])
def test_retention_never_deletes_what_the_rules_still_count(window, interval):
    config = replace_rules(Config(), course_window_days=window, recommended_interval_days=interval,
                           min_interval_days=min(21, interval))
    needed = max(window, interval)
    edge = date.fromordinal(TODAY.toordinal() - needed)
    assert config.rules.history_days == needed
    assert rules.purge_cutoff(TODAY, edge, config) == edge
    with pytest.raises(rules.PurgeRefused, match="needed by the interval and course rules"):
        rules.purge_cutoff(TODAY, date.fromordinal(edge.toordinal() + 1), config)
