"""The bounded long-poll behind P7: answers at a change, at most `slots` wait at once."""
from __future__ import annotations

import threading
import time

from appliance.page.live import StatusWaiters, version_of

BASE = {"docked": True, "held": True, "locks": ["no_cartridge"], "now": "2026-11-28T09:00:00+00:00",
        "session": None}


def test_the_version_ignores_the_ticking_clock_but_not_a_change():
    later = dict(BASE, now="2026-11-28T09:00:01+00:00")
    assert version_of(BASE) == version_of(later)
    assert version_of(BASE) != version_of(dict(BASE, locks=[]))
    running = dict(BASE, session={"id": 3, "out_seconds": 5})
    assert version_of(running) == version_of(dict(running, session={"id": 3, "out_seconds": 6}))


def test_a_waiting_request_answers_as_soon_as_the_status_changes():
    current = {"status": BASE}
    waiters = StatusWaiters(2, wait_s=5, step_s=0.01)
    threading.Timer(0.2, lambda: current.update(status=dict(BASE, locks=[]))).start()
    began = time.monotonic()
    status, waited = waiters.wait(lambda: current["status"], version_of(BASE))
    assert waited and status["locks"] == [] and 0.15 < time.monotonic() - began < 1.0


def test_no_more_than_the_slots_wait_and_the_rest_answer_at_once():
    waiters = StatusWaiters(1, wait_s=0.5, step_s=0.01)
    known = version_of(BASE)
    holder = threading.Thread(target=waiters.wait, args=(lambda: BASE, known))
    holder.start()
    time.sleep(0.05)
    began = time.monotonic()
    _, waited = waiters.wait(lambda: BASE, known)
    assert not waited and time.monotonic() - began < 0.1
    holder.join()
    _, waited = waiters.wait(lambda: BASE, known)
    assert waited  # the slot is free again after a timeout
