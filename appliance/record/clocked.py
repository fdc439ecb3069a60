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
# sessions.vouch: "exact" dated by vouched time an authenticated source had set this boot;
# "lower" dated by vouched time carried over a reboot (moved when a trusted source says).
VOUCH_EXACT, VOUCH_LOWER = "exact", "lower"


class ClockMixin:
    def mark_session_clock(self, session_id: int, boot_id: str, started_mono: float,
                           known_right: bool, vouched_at: datetime | None = None,
                           vouched_exact: bool = False) -> None:
        """The boot, monotonic time and clock trust of a session just opened, and the
        vouched time it started at: the time the rules count its interval from."""
        with self.transaction(f"the clock of session {session_id}"):
            self._conn.execute(
                "UPDATE sessions SET boot_id = ?, started_mono = ?, clock = ?, vouched_at = ?, "
                "vouch = ? WHERE id = ?",
                (boot_id, started_mono, CLOCK_RIGHT if known_right else CLOCK_UNKNOWN,
                 iso(vouched_at) if vouched_at else None,
                 (VOUCH_EXACT if vouched_exact else VOUCH_LOWER) if vouched_at else None, session_id))

    def revouch_sessions(self, correction: timedelta, vouched_now: datetime, boot_id: str,
                         tz: tzinfo, dates: Callable[[datetime], tuple[str | None, str | None]],
                         actor: str, at: datetime, source: str = "") -> dict[int, datetime]:
        """A trusted source moved vouched time by `correction`. Each session that
        vouched time dated without it moves by the same step: those of this boot (the
        monotonic clock measured the time since them, and that is all that passed) and
        those carried over a reboot (vouch 'lower': the latest they could have been). A
        session dated after `vouched_now` comes back to it. Start (shown and vouched), end,
        day and eligible dates move together; one audit entry keeps the dates they had.
        Returns id -> new start."""
        rows = self._read("SELECT id, started_at, ended_at, vouched_at, vouch, boot_id, "
                          "next_eligible_date FROM sessions ORDER BY id")
        moves = []
        for row in rows:
            started = datetime.fromisoformat(row["started_at"])
            rule_time = datetime.fromisoformat(row["vouched_at"]) if row["vouched_at"] else started
            move = revouched(rule_time, row["vouch"], row["boot_id"], correction, vouched_now, boot_id)
            if move is not None:
                moves.append((row, started, *move))
        if not moves:
            return {}
        kept, moved = [], {}
        with self.transaction("the sessions re-dated on vouched time"):
            for row, started, to, how in moves:
                to = to.replace(microsecond=0)
                ended = row["ended_at"]
                new_end = iso(datetime.fromisoformat(ended) + (to - started)) if ended else None
                eligible, recommended = dates(to) if row["next_eligible_date"] else (None, None)
                self._conn.execute(
                    "UPDATE sessions SET started_at = ?, ended_at = ?, day = ?, vouched_at = ?, "
                    "vouch = ?, next_eligible_date = coalesce(?, next_eligible_date), "
                    "recommended_date = coalesce(?, recommended_date), clock = ? WHERE id = ?",
                    (iso(to), new_end, to.astimezone(tz).date().isoformat(), iso(to), VOUCH_EXACT,
                     eligible, recommended, how, row["id"]))
                kept.append({"session": row["id"], "from": row["started_at"],
                             "vouched_from": row["vouched_at"], "to": iso(to), "how": how})
                moved[row["id"]] = to
            self._audit(actor, "clock_reanchored", {"sessions": kept, "by": source or "trusted",
                                                    "correction_s": round(correction.total_seconds())},
                        at, True)
        return moved

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


def revouched(rule_time: datetime, vouch: str | None, session_boot: str | None,
              correction: timedelta, vouched_now: datetime, boot_id: str) -> tuple[datetime, str] | None:
    """Where a session's vouched start goes when a trusted source moved vouched time by
    `correction` (None: it stays). Pure, so the property tests drive it over any history."""
    carried = vouch == VOUCH_LOWER or (bool(vouch) and session_boot == boot_id)
    to, how = (rule_time + correction, "vouched") if carried else (rule_time, "kept")
    if to > vouched_now + timedelta(minutes=2):
        to, how = vouched_now, "future"  # dated later than now: the latest it could be
    return None if how == "kept" else (to, how)


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
