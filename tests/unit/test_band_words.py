"""The state band names whom the pen is for and the date a therapist rebooks on; the
running timer says what it measures (time out of the cradle), never needling."""
from __future__ import annotations

from appliance.page import view

INTERVAL = {"code": "client_interval", "kind": "lock", "words": "This client had this area treated too recently.",
            "action": "Book the client for the next eligible date.",
            "detail": {"last_date": "2026-11-20", "days_since": 8, "next_eligible_date": "2026-12-11"}}
NAMED = {"ref": "BK-1042", "area": "face", "checklist": ["screened", "test-area"]}


def status(**values) -> dict:
    base = {"docked": True, "held": False, "light": "green", "locks": [], "reasons": [],
            "next_client": None, "now": "2026-11-28T09:00:00+00:00", "clock_synced": True}
    base.update(values)
    return base


def test_free_names_the_client_and_area():
    live = view.live_state(status(next_client=NAMED))
    assert live.word == "FREE" and live.who == "for BK-1042, face"


def test_in_use_names_the_client_area_and_minutes_out():
    session = {"client_ref": "BK-1042", "area": "face", "out_seconds": 12 * 60 + 8}
    live = view.live_state(status(docked=False, light="blue", session=session))
    assert live.word == "IN USE" and live.who == "for BK-1042, face, out 12 min"


def test_nobody_named_names_nobody():
    assert view.live_state(status(held=True, light="amber", locks=["no_client"])).who == ""


def test_an_interval_hold_gives_the_next_eligible_date_with_its_weekday():
    live = view.live_state(status(held=True, light="red", locks=["client_interval"], reasons=[INTERVAL],
                                  next_client=NAMED))
    assert live.next_date == "Next eligible date: Friday 11 December 2026"
    german = view.live_state(status(held=True, light="red", locks=["client_interval"], reasons=[INTERVAL],
                                    next_client=NAMED), locale="de-DE")
    assert "Freitag, 11. Dezember 2026" in german.next_date


def test_no_date_without_an_interval_hold():
    assert view.live_state(status(next_client=NAMED)).next_date == ""


def test_the_timer_says_time_out_of_the_cradle_not_needling():
    running = view.Running(12 * 60 + 8, 30 * 60, 90 * 60)
    assert running.out == "12 min 08 s"  # never "12:08", which reads as a time of day
    assert "when the pen is back" in running.note and "over-needling in" not in running.note
    long = view.Running(31 * 60, 30 * 60, 90 * 60)
    assert "longer than the 30-minute needling limit" in long.note and "now:" not in long.note
