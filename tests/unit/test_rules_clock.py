"""R6 in the pure rules: a clock behind the record is a lock; one not known right a warning."""
from __future__ import annotations

from appliance.core import rules
from tests.unit.test_rules import CONFIG, NOW, history, ready


def test_a_clock_behind_the_record_holds_the_pen_with_words_to_act_on():
    decision = rules.decide(ready(clock_synced=False, clock_behind_record=True), history(), CONFIG, NOW)
    assert decision.held and "clock_unsynced" in decision.locks
    action = rules.describe("clock_unsynced").action  # in words, for the therapist's page
    assert "manager" in action and "trusted time source" in action and "pendock" not in action


def test_a_clock_not_known_right_but_not_behind_only_warns():
    decision = rules.decide(ready(clock_synced=False), history(), CONFIG, NOW)
    assert not decision.held and decision.warnings == ("clock_unsynced",)

