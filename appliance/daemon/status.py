"""The dock's live status as the README's `status --json` object: one pure function
of the dock's state values, so the daemon, and the page tests' fake daemon, present it
the same way and cannot drift apart.

Each reason also says whether the page lists it while no pen is docked
(`shown_undocked`): the panel's headline already says "No pen in the cradle", so the
`no_pen` lock would only repeat it. The page (view.py and live.js) filters on that flag,
never on the sentence's words.
"""
from __future__ import annotations

from datetime import datetime, tzinfo

from appliance.core import rules
from appliance.core import reason_facts
from appliance.core.model import CartridgeAuth, Decision, NextClient, OpenSession, PenReading

# Codes the panel's "No pen in the cradle" headline already says.
SAID_BY_UNDOCKED_HEADLINE = frozenset({"no_pen"})


def present_status(*, docked: bool, released: bool, decision: Decision,
                   live_warnings: tuple[str, ...] = (), reading: PenReading | None = None,
                   session: OpenSession | None = None, out_seconds: float = 0.0,
                   next_client: NextClient | None = None, last_session: dict | None = None,
                   readout_error: str | None = None, clock_synced: bool = True,
                   storage_ok: bool = True, light: str, now: datetime, tz: tzinfo,
                   pin_factory: str, facts: reason_facts.FactInputs | None = None,
                   session_registers: bool = False,
                   cartridge_auth: CartridgeAuth | None = None) -> dict:
    """The status object, keys in the README's order. `out_seconds`: how long the open
    session's pen has been out (monotonic), ignored without a session. `facts`: what the
    facts behind each reason are worked out from (`detail`, `detail_words`), the pen's
    battery share, sessions left and hours to service, and the session's limits.
    `session_registers`: the docked pen's session registers are zeroed under the dock's tag
    (frame v2)."""
    warnings = list(dict.fromkeys(decision.warnings + tuple(live_warnings)))
    status = {
        "docked": docked,
        "held": not released,
        "locks": list(decision.locks),
        "warnings": warnings,
        "overridden": list(decision.overridden),
        "reasons": ([present_reason(code, "lock") for code in decision.locks]
                    + [present_reason(code, "warning") for code in warnings]),
        "pen": None if reading is None else {
            "serial": reading.pen_serial, "firmware": reading.firmware,
            "strokes": reading.strokes, "motor_seconds": reading.motor_seconds,
            "battery_mv": reading.battery_mv, "temperature_c": reading.temperature_c,
            "max_depth_mm": reading.max_depth_mm, "faults": sorted(reading.faults),
            "frame_version": reading.frame_version, "session_registers": session_registers,
        },
        "cartridge": None if reading is None or reading.cartridge_serial == 0 else {
            "serial": reading.cartridge_serial, "strokes": reading.cartridge_strokes,
            **present_cartridge_auth(cartridge_auth),
        },
        "next_client": None if next_client is None else {
            "ref": next_client.ref, "area": next_client.area,
            "checklist": sorted(next_client.checklist),
        },
        "session": None if session is None else _present_session(session, out_seconds),
        "last_session": last_session,
        "readout_error": readout_error,
        "clock_synced": clock_synced,
        "storage_ok": storage_ok,
        "light": light,
        "now": now.isoformat(),
        "today": now.date().isoformat(),
        "timezone": str(tz),
        "pin_factory": pin_factory,
    }
    if facts is not None:
        add_facts(status, facts)
    return status


def present_cartridge_auth(auth: CartridgeAuth | None) -> dict:
    """What the chip proved (hw/cartridge_auth.toml): `authenticated` is the contract's key."""
    return {
        "authenticated": auth is not None and auth.authenticated,
        "authentication": "unverified" if auth is None else auth.verdict,
        "chip_counter": auth.counter if auth is not None and auth.authenticated else None,
    }


def present_reason(code: str, kind: str | None = None) -> dict:
    """One lock or warning: its code, kind, words and action, and whether the page lists
    it while no pen is docked. `kind` is what it is now (a warning such as clock_unsynced
    can hold the pen), else the code's usual kind."""
    described = rules.describe(code)._asdict()
    if kind is not None:
        described["kind"] = kind
    return {"code": code, **described, "shown_undocked": code not in SAID_BY_UNDOCKED_HEADLINE}


def add_facts(status: dict, facts: reason_facts.FactInputs) -> None:
    """The facts a therapist needs beside each verdict (added keys; the README's keys stay)."""
    for reason in status["reasons"]:
        detail = reason_facts.detail(reason["code"], facts)
        reason["detail"] = detail
        reason["detail_words"] = reason_facts.sentence(reason["code"], detail)
    if status["pen"] is not None:
        status["pen"].update(reason_facts.pen_facts(facts))
    if status["session"] is not None:
        limits = facts.config.rules
        status["session"]["needling_limit_seconds"] = limits.max_needling_minutes * 60
        status["session"]["overrun_limit_seconds"] = limits.session_overrun_minutes * 60


def _present_session(s: OpenSession, out_seconds: float) -> dict:
    return {
        "id": s.id, "started_at": s.started_at.isoformat(), "client_ref": s.client_ref,
        "area": s.area, "pen_serial": s.pen_serial, "cartridge_serial": s.cartridge_serial,
        "out_seconds": round(out_seconds),
        "forced": s.forced, "warnings": list(s.warnings), "overrides": list(s.overrides),
    }
