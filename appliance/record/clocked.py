"""What the record keeps about the clock: each session's boot and monotonic time beside its
wall time, the latest time written while the clock was known right, and the re-anchoring
of sessions dated by a clock that was not.

A mixin of `Store` (store.py). Re-anchoring rewrites a session's dates in one transaction
with an audit entry that keeps the dates it had, so nothing is lost and the chain holds.
"""
from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any, Callable

from appliance.record.values import iso


# sessions.clock: "right" known right at the start; "unknown" not; then "monotonic" (re-anchored
# within its boot, exact) or "latest" (a reboot came between: the latest it could have been).
CLOCK_RIGHT, CLOCK_UNKNOWN = "right", "unknown"


class ClockMixin:
    def mark_session_clock(self, session_id: int, boot_id: str, started_mono: float,
                           known_right: bool) -> None:
        """The boot, monotonic time and clock trust of a session just opened."""
        with self.transaction(f"the clock of session {session_id}"):
            self._conn.execute(
                "UPDATE sessions SET boot_id = ?, started_mono = ?, clock = ? WHERE id = ?",
                (boot_id, started_mono, CLOCK_RIGHT if known_right else CLOCK_UNKNOWN,
                 session_id))

    def trusted_high_water(self) -> datetime | None:
        """The latest time the record holds that was written while the clock was known
        right: a wall clock earlier than this is behind the record."""
        rows = self._read("SELECT at FROM audit WHERE clock_synced = 1 ORDER BY id DESC LIMIT 1")
        found = [datetime.fromisoformat(rows[0][0])] if rows else []
        rows = self._read("SELECT max(started_at) FROM sessions WHERE clock != 'unknown'")
        if rows and rows[0][0]:
            found.append(datetime.fromisoformat(rows[0][0]))
        return max(found) if found else None

    def unanchored_sessions(self) -> list[dict[str, Any]]:
        rows = self._read("SELECT id, started_at, ended_at, boot_id, started_mono, "
                          "next_eligible_date FROM sessions WHERE clock = 'unknown' ORDER BY id")
        return [dict(row) for row in rows]

    def reanchor_sessions(self, moves: list[dict[str, Any]], tz: tzinfo,
                          dates: Callable[[datetime], tuple[str | None, str | None]],
                          actor: str, at: datetime) -> None:
        """Move each session to its re-anchored start (`to`, with `how`), its end by the
        same step, its day and eligible dates with it; one audit entry keeps the old dates."""
        if not moves:
            return
        with self.transaction("the re-anchored sessions"):
            kept = []
            for move in moves:
                start = datetime.fromisoformat(move["started_at"])
                new_start: datetime = move["to"]
                step = new_start - start
                ended = move.get("ended_at")
                new_end = iso(datetime.fromisoformat(ended) + step) if ended else None
                eligible, recommended = (dates(new_start) if move.get("next_eligible_date")
                                         else (None, None))
                self._conn.execute(
                    "UPDATE sessions SET started_at = ?, ended_at = ?, day = ?, "
                    "next_eligible_date = coalesce(?, next_eligible_date), "
                    "recommended_date = coalesce(?, recommended_date), clock = ? WHERE id = ?",
                    (iso(new_start), new_end, new_start.astimezone(tz).date().isoformat(),
                     eligible, recommended, move["how"], move["id"]))
                kept.append({"session": move["id"], "from": move["started_at"],
                             "to": iso(new_start), "how": move["how"]})
            self._audit(actor, "clock_reanchored", {"sessions": kept}, at, True)


def reanchored_start(session: dict[str, Any], boot_id: str, wall: datetime,
                     mono: float) -> tuple[datetime, str]:
    """Where a session dated by an unknown clock belongs, now that the clock is right.

    Same boot: exactly, by the monotonic clock. A reboot came between: it happened before
    this boot began (wall - monotonic), so that is the latest it could have been, which
    errs towards holding the client's interval.
    """
    if session.get("boot_id") == boot_id and session.get("started_mono") is not None:
        return wall - timedelta(seconds=mono - float(session["started_mono"])), "monotonic"
    return wall - timedelta(seconds=max(0.0, mono)), "latest"
