"""What of the record is shared with the clinic's other docks (pure)."""
from __future__ import annotations

from typing import Any

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
