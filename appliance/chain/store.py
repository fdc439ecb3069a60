"""The chain's PostgreSQL store: every dock's verified events, once each, and what the
owner's report reads (sessions, per-day counts, per-dock marks), kept in the same
transaction as the events they come from.

Idempotent by construction: an event is keyed by (dock_id, seq); inserting one twice is a
no-op, and only a new row moves the derived tables. A dock's `applied_seq` is its last
sequence held without a gap: the only mark ever acknowledged back to it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable

from appliance.fleet.events import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS chain_events (
    dock_id text NOT NULL, seq bigint NOT NULL, clinic text NOT NULL, kind text NOT NULL,
    at timestamptz NOT NULL, payload jsonb NOT NULL, prev text NOT NULL, hash text NOT NULL,
    sig text NOT NULL, received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dock_id, seq));
CREATE TABLE IF NOT EXISTS chain_docks (
    dock_id text PRIMARY KEY, clinic text NOT NULL, applied_seq bigint NOT NULL DEFAULT 0,
    held bigint NOT NULL DEFAULT 0, known_seq bigint NOT NULL DEFAULT 0,
    last_event_at timestamptz, last_heard timestamptz);
CREATE TABLE IF NOT EXISTS chain_sessions (
    dock_id text NOT NULL, session bigint NOT NULL, clinic text NOT NULL, day date NOT NULL,
    started_at timestamptz NOT NULL, ended_at timestamptz, outcome text NOT NULL DEFAULT 'open',
    client_ref text NOT NULL DEFAULT '', area text NOT NULL DEFAULT '', pen_serial bigint,
    cartridge_serial bigint, overrides jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (dock_id, session));
CREATE INDEX IF NOT EXISTS chain_sessions_by_clinic_day ON chain_sessions (clinic, day);
CREATE TABLE IF NOT EXISTS chain_daily (
    dock_id text NOT NULL, day date NOT NULL, sessions bigint NOT NULL,
    PRIMARY KEY (dock_id, day));
CREATE TABLE IF NOT EXISTS chain_pens (
    serial bigint PRIMARY KEY, clinic text NOT NULL, dock_id text NOT NULL, seen_at timestamptz NOT NULL,
    motor_seconds bigint NOT NULL, service_motor_seconds bigint NOT NULL);
CREATE INDEX IF NOT EXISTS chain_sessions_by_client ON chain_sessions (clinic, client_ref, area, started_at);
CREATE TABLE IF NOT EXISTS chain_conflicts (
    clinic text NOT NULL, client_ref text NOT NULL, area text NOT NULL,
    first_dock text NOT NULL, first_session bigint NOT NULL, first_at timestamptz NOT NULL,
    second_dock text NOT NULL, second_session bigint NOT NULL, second_at timestamptz NOT NULL,
    PRIMARY KEY (first_dock, first_session, second_dock, second_session));
CREATE INDEX IF NOT EXISTS chain_conflicts_by_time ON chain_conflicts (second_at);
CREATE TABLE IF NOT EXISTS chain_users (
    name text PRIMARY KEY, hash text NOT NULL, role text NOT NULL DEFAULT 'chain');
CREATE TABLE IF NOT EXISTS chain_dropped (
    clinic text NOT NULL, category text NOT NULL, count bigint NOT NULL,
    PRIMARY KEY (clinic, category));
"""


@dataclass
class Written:
    new: int = 0
    duplicates: int = 0
    equivocations: int = 0  # same (dock, seq), another hash: kept out, counted
    marks: dict[str, dict[str, int]] = field(default_factory=dict)  # {clinic: {dock: applied}}
    gaps: set[str] = field(default_factory=set)  # clinics with a dock holding past a gap


def connect(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=False)


def create(conn) -> None:
    """The tables, once: two processes creating them at the same moment (the worker and the
    owner's page starting together) would collide in PostgreSQL's catalogue without the lock."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(7201)")  # any fixed key: the chain's schema
        conn.execute(SCHEMA)


def write(conn, events: Iterable[tuple[str, Event]], heard: dict[str, tuple[str, int]],
          dropped: dict[tuple[str, str], int]) -> Written:
    """One transaction: new events, the derived rows, each touched dock's marks, what the
    docks said of themselves (`heard`: {dock: (clinic, own seq)}) and what was dropped."""
    result = Written()
    touched: dict[str, str] = {}
    with conn.transaction():
        for clinic, event in events:
            _ensure_dock(conn, event.dock, clinic)
            row = conn.execute(
                "INSERT INTO chain_events (dock_id, seq, clinic, kind, at, payload, prev, hash, sig) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (dock_id, seq) DO NOTHING "
                "RETURNING seq", (event.dock, event.seq, clinic, event.kind, event.at,
                                  json.dumps(dict(event.payload)), event.prev, event.hash,
                                  event.sig)).fetchone()
            if row is None:
                same = conn.execute("SELECT hash FROM chain_events WHERE dock_id = %s AND seq = %s",
                                    (event.dock, event.seq)).fetchone()
                if same and same[0] == event.hash:
                    result.duplicates += 1
                else:
                    result.equivocations += 1
                continue
            result.new += 1
            touched[event.dock] = clinic
            _derive(conn, clinic, event)
            conn.execute("UPDATE chain_docks SET held = held + 1, known_seq = greatest(known_seq, %s), "
                         "last_event_at = greatest(last_event_at, %s) WHERE dock_id = %s",
                         (event.seq, event.at, event.dock))
        now = datetime.now(timezone.utc)
        for dock, (clinic, seq) in heard.items():
            _ensure_dock(conn, dock, clinic)
            conn.execute("UPDATE chain_docks SET known_seq = greatest(known_seq, %s), last_heard = %s "
                         "WHERE dock_id = %s", (seq, now, dock))
        for dock in touched:
            _advance(conn, dock)
        for (clinic, category), count in dropped.items():
            conn.execute("INSERT INTO chain_dropped (clinic, category, count) VALUES (%s, %s, %s) "
                         "ON CONFLICT (clinic, category) DO UPDATE SET count = chain_dropped.count "
                         "+ excluded.count", (clinic, category, count))
        for dock, clinic, applied, known in conn.execute(
                "SELECT dock_id, clinic, applied_seq, known_seq FROM chain_docks WHERE dock_id = ANY(%s)",
                (list(set(touched) | set(heard)),)).fetchall():
            result.marks.setdefault(clinic, {})[dock] = applied
            if known > applied:
                result.gaps.add(clinic)
    return result


def _ensure_dock(conn, dock: str, clinic: str) -> None:
    conn.execute("INSERT INTO chain_docks (dock_id, clinic) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                 (dock, clinic))


def _advance(conn, dock: str) -> None:
    """applied_seq up to the first gap, from where it stood."""
    (applied,) = conn.execute("SELECT applied_seq FROM chain_docks WHERE dock_id = %s",
                              (dock,)).fetchone()
    for (seq,) in conn.execute("SELECT seq FROM chain_events WHERE dock_id = %s AND seq > %s "
                               "ORDER BY seq", (dock, applied)):
        if seq != applied + 1:
            break
        applied = seq
    conn.execute("UPDATE chain_docks SET applied_seq = %s WHERE dock_id = %s", (applied, dock))


def _derive(conn, clinic: str, event: Event) -> None:
    p = event.payload
    if event.kind == "session_opened":
        day = event.at[:10]  # the dock's own local date, as its log shows it
        row = conn.execute(
            "INSERT INTO chain_sessions (dock_id, session, clinic, day, started_at, client_ref, area, "
            "pen_serial, cartridge_serial, overrides) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (dock_id, session) DO NOTHING RETURNING session",
            (event.dock, p["session"], clinic, day, event.at, p.get("client_ref") or "",
             p.get("area") or "", p["pen_serial"], p["cartridge_serial"],
             json.dumps(p.get("overrides") if isinstance(p.get("overrides"), list) else []))).fetchone()
        if row is not None:
            if p.get("client_ref"):
                _find_conflicts(conn, clinic, event)
            conn.execute("INSERT INTO chain_daily (dock_id, day, sessions) VALUES (%s, %s, 1) "
                         "ON CONFLICT (dock_id, day) DO UPDATE SET sessions = chain_daily.sessions + 1",
                         (event.dock, day))
    elif event.kind in ("pen_registered", "pen_counters", "rebaseline", "service_reset"):
        _pen(conn, clinic, event)
    elif event.kind == "session_closed":
        conn.execute("UPDATE chain_sessions SET ended_at = %s, outcome = %s WHERE dock_id = %s "
                     "AND session = %s", (event.at, p["outcome"], event.dock, p["session"]))
    elif event.kind == "session_interrupted":
        conn.execute("UPDATE chain_sessions SET ended_at = %s, outcome = 'interrupted' WHERE "
                     "dock_id = %s AND session = %s", (event.at, event.dock, p["session"]))


def _pen(conn, clinic: str, event: Event) -> None:
    """A pen's motor seconds (they only rise, but for a re-baseline) and those at its last
    service, wherever it was seen last: what "hours to service" needs."""
    p = event.payload
    motor = p["motor_seconds"]
    service = p.get("service_motor_seconds", motor) if event.kind == "rebaseline" else motor
    conn.execute(
        "INSERT INTO chain_pens (serial, clinic, dock_id, seen_at, motor_seconds, service_motor_seconds) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (serial) DO NOTHING",
        (p["serial"], clinic, event.dock, event.at, motor, service))
    if event.kind in ("pen_registered", "pen_counters"):
        conn.execute("UPDATE chain_pens SET motor_seconds = greatest(motor_seconds, %s), "
                     "clinic = CASE WHEN seen_at <= %s THEN %s ELSE clinic END, "
                     "dock_id = CASE WHEN seen_at <= %s THEN %s ELSE dock_id END, "
                     "seen_at = greatest(seen_at, %s) WHERE serial = %s",
                     (motor, event.at, clinic, event.at, event.dock, event.at, p["serial"]))
    elif event.kind == "rebaseline":
        conn.execute("UPDATE chain_pens SET motor_seconds = %s, service_motor_seconds = least(service_motor_seconds, %s) "
                     "WHERE serial = %s", (motor, service, p["serial"]))
    else:  # service_reset
        conn.execute("UPDATE chain_pens SET service_motor_seconds = greatest(service_motor_seconds, %s) "
                     "WHERE serial = %s", (motor, p["serial"]))


def pens(conn, service_interval_hours: float) -> list[tuple]:
    """(serial, clinic, dock, seen_at, hours to service), soonest due first."""
    return conn.execute(
        "SELECT serial, clinic, dock_id, seen_at, round((%s - (motor_seconds - service_motor_seconds) "
        "/ 3600.0)::numeric, 1) AS due FROM chain_pens ORDER BY due, serial LIMIT 200",
        (service_interval_hours,)).fetchall()


# The shipped rules' minimum interval (docs/clinical-basis.md): a clinic's own setting is
# on its docks, which find their conflicts with it; the chain's view uses the default.
CONFLICT_DAYS = 21


def _find_conflicts(conn, clinic: str, event: Event) -> None:
    """Sessions of one client and area on two docks of one clinic closer than the minimum
    interval, the later one not a manager's override: both docks were blind to each other
    (a partition). Found once, when the second of the two arrives (an index probe)."""
    p = event.payload
    at = datetime.fromisoformat(event.at)
    window = timedelta(days=CONFLICT_DAYS)
    mine = (event.dock, p["session"], at, "client_interval" in (p.get("overrides") or []))
    for dock, session, started, overrides in conn.execute(
            "SELECT dock_id, session, started_at, overrides FROM chain_sessions WHERE clinic = %s AND "
            "client_ref = %s AND area = %s AND dock_id <> %s AND started_at > %s AND started_at < %s",
            (clinic, p["client_ref"], p.get("area") or "", event.dock, at - window, at + window)).fetchall():
        first, second = sorted([mine, (dock, session, started, "client_interval" in (overrides or []))],
                               key=lambda s: s[2])
        if second[3]:
            continue  # a manager knowingly overrode the interval
        conn.execute("INSERT INTO chain_conflicts (clinic, client_ref, area, first_dock, first_session, "
                     "first_at, second_dock, second_session, second_at) VALUES (%s, %s, %s, %s, %s, %s, %s, "
                     "%s, %s) ON CONFLICT DO NOTHING", (clinic, p["client_ref"], p.get("area") or "",
                                                        *first[:3], *second[:3]))


def conflicts(conn, since: date) -> list[tuple]:
    """The partition conflicts whose later session is from `since` on, newest first."""
    return conn.execute(
        "SELECT clinic, client_ref, area, first_dock, first_at, second_dock, second_at FROM chain_conflicts "
        "WHERE second_at >= %s ORDER BY second_at DESC LIMIT 100", (since,)).fetchall()


def marks(conn) -> dict[str, dict[str, int]]:
    """{clinic: {dock: applied_seq}} of every dock the chain knows."""
    out: dict[str, dict[str, int]] = {}
    for dock, clinic, applied in conn.execute("SELECT dock_id, clinic, applied_seq FROM chain_docks"):
        out.setdefault(clinic, {})[dock] = applied
    conn.commit()
    return out


def report(conn, since: date | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The contract's `chain report --json` (plus `dropped`, what the worker refused)."""
    now = now or datetime.now(timezone.utc)
    counts = dict(conn.execute(
        "SELECT dock_id, sum(sessions) FROM chain_daily WHERE day >= %s GROUP BY dock_id",
        (since or date(1, 1, 1),)).fetchall())
    clinics: dict[str, list[dict[str, Any]]] = {}
    for dock, clinic, held, known, last_event, heard in conn.execute(
            "SELECT dock_id, clinic, held, known_seq, last_event_at, last_heard FROM chain_docks "
            "ORDER BY clinic, dock_id"):
        clinics.setdefault(clinic, []).append({
            "dock_id": dock, "sessions": int(counts.get(dock) or 0),
            "last_event_at": last_event.isoformat() if last_event else None,
            "lag_seconds": round((now - heard).total_seconds(), 1) if heard else None,
            "missing": max(int(known) - int(held), 0)})
    dropped: dict[str, int] = {}
    for category, count in conn.execute("SELECT category, sum(count) FROM chain_dropped GROUP BY category"):
        dropped[category] = int(count)
    conn.commit()
    return {"clinics": [{"clinic": c, "docks": d} for c, d in sorted(clinics.items())],
            "sessions": sum(d["sessions"] for docks in clinics.values() for d in docks),
            "dropped": dropped}


def rows_per_dock(conn) -> dict[str, list[int]]:
    """Every dock's ingested sequences, in order (for the tests' exactly-once checks)."""
    out: dict[str, list[int]] = {}
    for dock, seq in conn.execute("SELECT dock_id, seq FROM chain_events ORDER BY dock_id, seq"):
        out.setdefault(dock, []).append(seq)
    conn.commit()
    return out
