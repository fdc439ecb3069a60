"""Issue 9 item 5: a technician can list and revoke API tokens, remove a user and set a
user's password, each audited (never a hash); the page's access follows at once."""
from __future__ import annotations

import hashlib

import pytest

from appliance.daemon.control import BadRequest, Refused
from appliance.record.passwords import password_hash
from tests.support.inprocess import SimDock


@pytest.fixture
def dock(tmp_path):
    dock = SimDock(tmp_path / "data", tmp_path / "control.sock", loop=False)
    quick = password_hash("a good password", n=2**10)
    for name, role in (("thera", "therapist"), ("boss", "manager")):
        dock.call("user_add", name=name, role=role, password_hash=quick)
    yield dock
    dock.close()


def token(dock, name: str) -> int:
    return dock.call("token_create", name=name, token_hash=hashlib.sha256(name.encode()).hexdigest())["id"]


def test_tokens_are_listed_without_their_hashes(dock):
    first, second = token(dock, "robot"), token(dock, "spreadsheet")
    listed = dock.call("token_list")
    assert [(t["id"], t["name"]) for t in listed] == [(first, "robot"), (second, "spreadsheet")]
    assert all("hash" not in key for t in listed for key in t)


def test_a_token_is_revoked_by_id_or_by_name_and_audited(dock):
    by_id, _ = token(dock, "robot"), token(dock, "spreadsheet")
    dock.call("token_revoke", ref=by_id)
    dock.call("token_revoke", ref="spreadsheet")
    assert dock.call("token_list") == []
    assert dock.store.token_by_hash(hashlib.sha256(b"robot").hexdigest()) is None
    assert dock.audit_actions()[-2:] == ["token_revoked", "token_revoked"]
    with pytest.raises(Refused, match="no API token"):
        dock.call("token_revoke", ref=by_id)


def test_two_tokens_of_one_name_are_revoked_by_id_only(dock):
    token(dock, "robot"), dock.call("token_create", name="robot", token_hash="b" * 64)
    with pytest.raises(Refused, match="revoke one by its id"):
        dock.call("token_revoke", ref="robot")
    assert len(dock.call("token_list")) == 2


def test_a_user_is_removed_and_audited_but_not_the_last_manager(dock):
    dock.call("user_remove", name="thera")
    assert dock.store.user("thera") is None and dock.audit_actions()[-1] == "user_removed"
    with pytest.raises(Refused, match="last manager"):
        dock.call("user_remove", name="boss")
    with pytest.raises(Refused, match="no user"):
        dock.call("user_remove", name="thera")
    with pytest.raises(BadRequest, match="ASCII"):
        dock.call("user_remove", name="José")


def test_a_new_password_replaces_the_old_and_the_audit_keeps_no_hash(dock):
    new = password_hash("another good one", n=2**10)
    dock.call("user_passwd", name="thera", password_hash=new)
    assert dock.store.user("thera")["password_hash"] == new
    entry = dock.store.audit_entries(limit=1)[0]
    assert entry.action == "user_password_changed" and "scrypt" not in str(entry.detail)
    with pytest.raises(BadRequest, match="scrypt"):
        dock.call("user_passwd", name="thera", password_hash="plain text")
    with pytest.raises(Refused, match="no user"):
        dock.call("user_passwd", name="nobody", password_hash=new)
