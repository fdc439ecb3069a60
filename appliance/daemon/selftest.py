"""`pendock selftest`: each part of the dock's hardware tried once, pass or fail, with
what was seen, so a technician can tell a broken light from a broken latch.

It never releases a seated pen the dock decided to hold: with a pen in the cradle the
latch is only checked against the dock's decision, not pulsed.
"""
from __future__ import annotations

import time

from appliance.daemon.dock import Dock


def run_selftest(dock: Dock) -> list[dict]:
    """Each part of the dock, pass or fail, with what was seen."""
    results = []

    def check(part: str, fn) -> None:
        try:
            ok, seen = fn()
        except Exception as error:  # a part that throws has failed its test
            ok, seen = False, repr(error)
        results.append({"part": part, "ok": bool(ok), "seen": seen})

    hw = dock.hw
    with dock.lock:
        colour = hw.light.colour

        def light():
            for name in ("red", "green", "blue", "off"):
                hw.light.show(name)
                time.sleep(0.05)
            hw.light.show(colour)
            return True, "cycled red, green, blue"

        def buzzer():
            hw.buzzer.on()
            on = hw.buzzer.is_active
            time.sleep(0.05)
            hw.buzzer.off()
            return on and not hw.buzzer.is_active, "beeped once"

        def latch():
            if dock.seated:
                want_held = not dock.released
                state = "held" if hw.latch.is_held else "released"
                if hw.latch.is_held == want_held:
                    return True, f"pen seated: latch not pulsed, {state} as the dock decided"
                return False, f"pen seated: latch {state}, but the dock decided {'held' if want_held else 'released'}"
            hw.latch.release()
            released = not hw.latch.is_held
            time.sleep(0.05)
            hw.latch.hold()
            return released and hw.latch.is_held, "pulsed with no pen seated, now held"

        def seat():
            level = hw.seat.settled()
            return level is not None, f"seat reads {'pen present' if level else 'empty'}"

        def pen():
            if not dock.seated:
                return True, "no pen seated: link not tried"
            reading = hw.pen.read()
            return True, f"pen {reading.pen_serial} read, firmware {reading.firmware}"

        for part, fn in (("light", light), ("buzzer", buzzer), ("latch", latch), ("seat", seat), ("pen link", pen)):
            check(part, fn)
        if not dock.released:
            hw.latch.hold()
    return results
