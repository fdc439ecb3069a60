"""Build a record for page tests and the P2 benchmark: the daemon's own schema (a writer
Store creates it), filled fast with executemany, then read through a read-only Store."""
from __future__ import annotations

import hashlib
import json
import random
import sqlite3
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from appliance.record.passwords import password_hash
from appliance.record.store import Store

PEN = 1592590337
AREAS = ("face", "forehead", "neck", "hands")
PASSWORD = "correct horse battery"
TOKEN = "pdk_test-token-for-the-page"
USERS = (("thera", "therapist"), ("boss", "manager"))

_COLUMNS = ("day", "started_at", "ended_at", "client_ref", "area", "pen_serial", "cartridge_serial",
            "strokes_start", "motor_seconds_start", "strokes_end", "motor_seconds_end",
            "needling_seconds", "strokes", "max_depth_mm", "outcome", "warnings", "overrides",
            "next_eligible_date", "recommended_date", "checklist", "forced")


def session_rows(first: date, days: int, per_day: int, seed: int = 1):
    """`per_day` sessions on each of `days` days from `first`, 08:00 onwards, 12 minutes apart."""
    rng = random.Random(seed)
    cartridge = 10_000
    for d in range(days):
        day = first + timedelta(days=d)
        for n in range(per_day):
            start = datetime.combine(day, time(8), timezone.utc) + timedelta(minutes=12 * n)
            minutes = rng.randint(5, 10)
            cartridge += 1
            warnings = ["depth_high"] if n % 7 == 3 else []
            overrides = ["client_interval"] if n % 11 == 5 else []
            yield (day.isoformat(), start.isoformat(), (start + timedelta(minutes=minutes)).isoformat(),
                   f"C-{rng.randint(1, 5000):05d}", AREAS[n % len(AREAS)], PEN, cartridge,
                   0, 0, 0, 0, minutes * 60, minutes * 7200, 1.0, "completed",
                   json.dumps(warnings), json.dumps(overrides),
                   (day + timedelta(days=21)).isoformat(), (day + timedelta(days=28)).isoformat(),
                   json.dumps(["screened", "test-area"]), 0)


def build_record(data: Path, rows, *, users: bool = True) -> None:
    """A record at `data` holding `rows`, the test users and the test token."""
    data.mkdir(parents=True, exist_ok=True)
    now = datetime(2026, 11, 28, 7, 0, tzinfo=timezone.utc)
    with Store.open(data) as store:
        if users:
            for name, role in USERS:
                store.add_user(name, role, password_hash(PASSWORD, n=2**10), now)
            store.add_token("robot", hashlib.sha256(TOKEN.encode()).hexdigest(), now)
    conn = sqlite3.connect(data / "pendock.db")
    try:
        conn.execute("INSERT OR IGNORE INTO pens (serial, firmware, first_seen, last_strokes, "
                     "last_motor_seconds, service_motor_seconds) VALUES (?, '1.4', ?, 0, 0, 0)",
                     (PEN, now.isoformat()))
        marks = ", ".join("?" * len(_COLUMNS))
        with conn:
            conn.executemany(f"INSERT INTO sessions ({', '.join(_COLUMNS)}) VALUES ({marks})", rows)
    finally:
        conn.close()
