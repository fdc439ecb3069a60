"""Access: the page's users and the API's tokens. The caller hashes (passwords.py);
the record stores only hashes, and audits every user and token it adds.

A mixin of `Store` (store.py).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from appliance.record.coverage import hash_stamp
from appliance.record.errors import StoreError
from appliance.record.values import iso


class AccessMixin:
    def add_user(self, name: str, role: str, password_hash: str, at: datetime, *,
                 actor: str = "system", clock_synced: bool = True) -> None:
        with self.transaction(f"the user {name!r}"):
            if self.user(name) is not None:
                raise StoreError(f"user {name!r} already exists: choose another name")
            self._conn.execute(
                "INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                (name, role, password_hash, iso(at)))
            # The stamp lets a restore tell a user's row from an edited one (coverage.py).
            self._audit(actor, "user_added", {"name": name, "role": role,
                                              "hash_stamp": hash_stamp(password_hash)}, at, clock_synced)

    def user(self, name: str) -> dict[str, Any] | None:
        rows = self._read("SELECT name, role, password_hash, created_at FROM users "
                          "WHERE name = ?", (name,))
        return dict(rows[0]) if rows else None

    def add_token(self, name: str, token_hash: str, at: datetime, *, actor: str = "system",
                  clock_synced: bool = True) -> int:
        with self.transaction(f"the API token {name!r}"):
            token_id = self._conn.execute(
                "INSERT INTO tokens (name, token_hash, created_at) VALUES (?, ?, ?)",
                (name, token_hash, iso(at))).lastrowid
            self._audit(actor, "token_created", {"id": token_id, "name": name}, at,
                        clock_synced)
        return token_id

    def token_by_hash(self, token_hash: str) -> dict[str, Any] | None:
        rows = self._read("SELECT id, name, token_hash, created_at FROM tokens "
                          "WHERE token_hash = ?", (token_hash,))
        return dict(rows[0]) if rows else None

    def users(self) -> list[dict[str, Any]]:
        """Every user's name, role and creation time (never the hash)."""
        return [dict(r) for r in self._read("SELECT name, role, created_at FROM users ORDER BY name")]

    def remove_user(self, name: str, at: datetime, *, actor: str = "system",
                    clock_synced: bool = True) -> None:
        with self.transaction(f"removing the user {name!r}"):
            if self._conn.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount != 1:
                raise StoreError(f"there is no user {name!r}")
            self._audit(actor, "user_removed", {"name": name}, at, clock_synced)

    def set_password(self, name: str, password_hash: str, at: datetime, *, actor: str = "system",
                     clock_synced: bool = True) -> None:
        with self.transaction(f"the password of {name!r}"):
            if self._conn.execute("UPDATE users SET password_hash = ? WHERE name = ?",
                                  (password_hash, name)).rowcount != 1:
                raise StoreError(f"there is no user {name!r}")
            self._audit(actor, "user_password_changed", {"name": name, "hash_stamp": hash_stamp(password_hash)},
                        at, clock_synced)

    def tokens(self) -> list[dict[str, Any]]:
        """Every API token's id, name and creation time (never the hash)."""
        return [dict(r) for r in self._read("SELECT id, name, created_at FROM tokens ORDER BY id")]

    def revoke_token(self, token_id: int, at: datetime, *, actor: str = "system",
                     clock_synced: bool = True) -> None:
        with self.transaction(f"revoking the API token {token_id}"):
            row = self._conn.execute("SELECT name FROM tokens WHERE id = ?", (token_id,)).fetchone()
            if row is None:
                raise StoreError(f"there is no API token {token_id}")
            self._conn.execute("DELETE FROM tokens WHERE id = ?", (token_id,))
            self._audit(actor, "token_revoked", {"id": token_id, "name": row[0]}, at, clock_synced)
