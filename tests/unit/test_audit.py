"""The audit hash chain: its format, and that every kind of tampering is found."""
from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from appliance.record import audit
from appliance.record.store import Store

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=1)))
ENTRIES = 6


@pytest.fixture
def db_path(tmp_path):
    """A record with ENTRIES audit entries, closed again so raw sqlite3 can tamper."""
    with Store.open(tmp_path) as store:
        for n in range(1, ENTRIES + 1):
            store.audit(f"actor{n}", "lock", {"n": n, "codes": ["no_pen"]},
                        T0 + timedelta(minutes=n), clock_synced=n % 2 == 0)
    return tmp_path / "pendock.db"


@pytest.fixture
def tamper(db_path):
    """A raw connection with the append-only triggers dropped, as an attacker would."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("DROP TRIGGER audit_no_delete")
    yield conn
    conn.close()


def verify(db_path) -> audit.VerifyResult:
    with Store.open(db_path.parent, readonly=True) as reader:
        return reader.verify_audit()


def row(conn, entry_id) -> tuple:
    return conn.execute("SELECT id, at, actor, action, detail, clock_synced, hash "
                        "FROM audit WHERE id = ?", (entry_id,)).fetchone()


def test_an_untouched_chain_verifies(db_path):
    result = verify(db_path)
    assert (result.ok, result.checked, result.first_bad_id) == (True, ENTRIES, None)


def test_empty_chain_verifies(tmp_path):
    with Store.open(tmp_path) as store:
        assert store.verify_audit() == audit.VerifyResult(True, 0, None,
                                                          "0 entries, chain intact")


def test_hash_format_is_sha256_of_canonical_json(db_path, tamper):
    """Pinned independently of entry_hash(), so an accidental format change is caught:
    each hash covers the whole previous one as hex text; an entry keeps its first 16 raw
    bytes (schema 8), the chain head the newest whole."""
    previous = "0" * 64
    for entry_id in range(1, ENTRIES + 1):
        _, at, actor, action, detail, synced, digest = row(tamper, entry_id)
        payload = {"action": action, "actor": actor, "at": at, "clock_synced": bool(synced),
                   "detail": json.loads(detail), "id": entry_id, "prev_hash": previous}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(text.encode()).digest()[:16] == digest
        previous = hashlib.sha256(text.encode()).hexdigest()
    assert row(tamper, 1)[1] == (T0 + timedelta(minutes=1)).isoformat()
    head = tamper.execute("SELECT value FROM state WHERE key = 'audit_head'").fetchone()[0]
    assert json.loads(head) == {"id": ENTRIES, "hash": previous}
    assert audit.whole_hash(tamper, ENTRIES) == previous


def test_entries_carry_hex_hashes_linked_to_the_one_before(db_path):
    with Store.open(db_path.parent, readonly=True) as reader:
        newest_first = reader.audit_entries(limit=ENTRIES)
    oldest_first = newest_first[::-1]
    assert oldest_first[0].prev_hash == audit.GENESIS_HASH
    for before, entry in zip(oldest_first, oldest_first[1:], strict=False):
        assert entry.prev_hash == before.hash
    whole = audit.GENESIS_HASH  # entries show hashes as kept: 16 bytes since schema 8
    for entry in oldest_first:
        whole = audit.entry_hash(entry.id, entry.at.isoformat(), entry.actor, entry.action,
                                 entry.detail, entry.clock_synced, whole)
        assert len(entry.hash) == 32 and entry.hash == whole[:32]


def test_the_software_cannot_edit_or_delete_entries(db_path):
    conn = sqlite3.connect(db_path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE audit SET actor = 'x' WHERE id = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit WHERE id = 2")
    conn.close()


@pytest.mark.parametrize("column, value", [
    ("detail", '{"codes":["no_pen"],"n":99}'),
    ("actor", "somebody-else"),
    ("at", "2024-03-01T08:00:00+01:00"),
    ("clock_synced", 1),  # entry 3 was written unsynced
    ("action", "release"),
])
def test_a_changed_entry_is_named(db_path, tamper, column, value):
    tamper.execute(f"UPDATE audit SET {column} = ? WHERE id = 3", (value,))
    result = verify(db_path)
    assert (result.ok, result.first_bad_id) == (False, 3)
    assert "changed" in result.reason


@pytest.mark.parametrize("value", [bytes(16), bytes(32), b"", "00" * 16])
def test_a_changed_hash_is_named(db_path, tamper, value):
    tamper.execute("UPDATE audit SET hash = ? WHERE id = 3", (value,))
    result = verify(db_path)
    assert (result.ok, result.first_bad_id) == (False, 3)


def test_a_tail_without_its_head_is_recomputed_and_the_chain_goes_on(db_path, tamper):
    whole = audit.whole_hash(tamper, ENTRIES)
    assert audit.read_tail(tamper) == audit.Tail(ENTRIES, whole)  # from the head
    tamper.execute("DELETE FROM state WHERE key = 'audit_head'")
    assert audit.read_tail(tamper) == audit.Tail(ENTRIES, whole)  # from the fields
    tamper.execute("INSERT INTO state VALUES ('audit_head', ?)",
                   (json.dumps({"id": ENTRIES, "hash": "ab" * 32}),))
    assert audit.read_tail(tamper) == audit.Tail(ENTRIES, whole)  # a head that does not fit
    entry = audit.append(tamper, "tech", "service_reset", {}, T0, True)
    assert entry.prev_hash == whole
    assert verify(db_path).ok


def test_detail_that_is_not_json_is_named(db_path, tamper):
    tamper.execute("UPDATE audit SET detail = 'not json' WHERE id = 4")
    result = verify(db_path)
    assert (result.ok, result.first_bad_id) == (False, 4)


def test_a_deleted_entry_is_named(db_path, tamper):
    tamper.execute("DELETE FROM audit WHERE id = 3")
    result = verify(db_path)
    assert (result.ok, result.first_bad_id) == (False, 3)
    assert "entry 3 is missing" in result.reason


def test_a_deleted_and_renumbered_entry_is_named(db_path, tamper):
    tamper.execute("DELETE FROM audit WHERE id = 3")
    for entry_id in range(4, ENTRIES + 1):
        tamper.execute("UPDATE audit SET id = ? WHERE id = ?", (entry_id - 1, entry_id))
    result = verify(db_path)
    assert (result.ok, result.first_bad_id) == (False, 3)


def test_entries_cut_off_the_end_are_found(db_path, tamper):
    tamper.execute("DELETE FROM audit WHERE id >= 5")
    result = verify(db_path)
    assert (result.ok, result.first_bad_id) == (False, 5)
    assert "deleted from the end" in result.reason


def test_an_inserted_entry_is_named(db_path, tamper):
    """Forged with a correct hash in the middle: the entry after it no longer links."""
    for entry_id in range(ENTRIES, 2, -1):
        tamper.execute("UPDATE audit SET id = ? WHERE id = ?", (entry_id + 1, entry_id))
    prev_hash = audit.whole_hash(tamper, 2)
    at = T0.isoformat()
    forged = audit.entry_hash(3, at, "mallory", "release", {}, True, prev_hash)
    tamper.execute("INSERT INTO audit VALUES (3, ?, 'mallory', 'release', '{}', 1, ?)",
                   (at, bytes.fromhex(forged)[:16]))
    result = verify(db_path)
    assert (result.ok, result.first_bad_id) == (False, 4)
    assert "inserted" in result.reason


def test_an_entry_added_at_the_end_with_a_valid_hash_is_found(db_path, tamper):
    last_hash = audit.whole_hash(tamper, ENTRIES)
    at = T0.isoformat()
    forged = audit.entry_hash(ENTRIES + 1, at, "mallory", "release", {}, True, last_hash)
    tamper.execute("INSERT INTO audit VALUES (?, ?, 'mallory', 'release', '{}', 1, ?)",
                   (ENTRIES + 1, at, bytes.fromhex(forged)[:16]))
    result = verify(db_path)
    assert (result.ok, result.first_bad_id) == (False, ENTRIES + 1)
    assert "not written by the dock" in result.reason


def test_reordered_entries_are_named(db_path, tamper):
    tamper.execute("UPDATE audit SET id = -1 WHERE id = 4")
    tamper.execute("UPDATE audit SET id = 4 WHERE id = 5")
    tamper.execute("UPDATE audit SET id = 5 WHERE id = -1")
    result = verify(db_path)
    assert (result.ok, result.first_bad_id) == (False, 4)


def test_writer_keeps_appending_after_reopen(db_path):
    with Store.open(db_path.parent) as store:
        entry = store.audit("tech", "service_reset", {"reason": "x"}, T0, True)
        assert entry.id == ENTRIES + 1
        assert entry.prev_hash[:32] == store.audit_entries(2)[1].hash
        assert entry.prev_hash == audit.whole_hash(store._conn, ENTRIES)
        assert store.verify_audit().checked == ENTRIES + 1


def test_entries_page_newest_first(db_path):
    with Store.open(db_path.parent, readonly=True) as reader:
        newest = reader.audit_entries(limit=2)
        assert [e.id for e in newest] == [ENTRIES, ENTRIES - 1]
        older = reader.audit_entries(limit=10, before_id=newest[-1].id)
        assert [e.id for e in older] == list(range(ENTRIES - 2, 0, -1))
        first = older[-1]
        assert (first.actor, first.detail, first.clock_synced) == (
            "actor1", {"n": 1, "codes": ["no_pen"]}, False)
        assert first.at == T0 + timedelta(minutes=1)


def test_append_refuses_naive_times_and_non_dict_detail(tmp_path):
    conn = sqlite3.connect(":memory:")
    with pytest.raises(ValueError, match="aware"):
        audit.append(conn, "a", "b", {}, datetime(2024, 1, 1), True)
    with pytest.raises(TypeError, match="dict"):
        audit.append(conn, "a", "b", ["x"], T0, True)
