"""What of the record is shared with the clinic's other docks (pure)."""
from __future__ import annotations

from typing import Any

# Knocked off the broker this many times within stale_after_minutes: another client uses
# this dock's login (the broker pins the client id to the login), so the dock says
# fleet_stale with the facts (fleet/link.py counts, fleet/process.py judges).
KICKED_AGAIN = 3
# A technician's acts on a pen, which a peer's key does not speak for (ledger.py).
TECHNICIAN_PEN_ACTS = frozenset({"rebaseline", "service_reset"})

# Audit actions of the record that are shared with the clinic's other docks.
SHARED_ACTIONS = frozenset({
    "session_opened", "session_closed", "session_interrupted", "pen_registered",
    "rebaseline", "service_reset", "override",
})
# Payload keys kept per kind: what a peer needs, never more (no names exist anyway).
_KEEP = {
    "session_opened": ("session", "client_ref", "area", "pen_serial", "cartridge_serial",
                       "warnings", "overrides", "forced"),
    "session_closed": ("session", "outcome", "needling_seconds", "strokes", "max_depth_mm",
                       "warnings"),
    "session_interrupted": ("session",),
    "pen_registered": ("serial", "firmware", "strokes", "motor_seconds"),
    "pen_counters": ("serial", "strokes", "motor_seconds"),
    "rebaseline": ("serial", "strokes", "motor_seconds", "service_motor_seconds"),
    "service_reset": ("serial", "motor_seconds"),
    "override": ("code", "reason"),
}


def shared_payload(kind: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {key: detail[key] for key in _KEEP[kind] if key in detail}
