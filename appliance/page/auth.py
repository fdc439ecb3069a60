"""Who may use the page: logins, their throttle, server-side sessions, API tokens, CSRF.

All of it lives in the page process's memory on purpose: the page may not write the data
folder, and a page restart ending every login is acceptable. Passwords are checked with
the slow salted hash of `pendock user add` (appliance/record/passwords.py).
"""
from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from appliance.record.passwords import check_password, password_hash


ROLES = ("therapist", "manager")
USER_NAME = re.compile(r"[A-Za-z0-9._-]{1,32}")
MAX_PASSWORD = 1024
# Checked when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = password_hash("not a password of anyone")


def valid_user_name(name: str) -> bool:
    return bool(USER_NAME.fullmatch(name or ""))


class LoginThrottle:
    """Per-name backoff: after `free_attempts` wrong passwords in a row, that name must
    wait `base_delay` seconds, doubling with each further miss up to `max_delay`.

    Keyed by the lower-cased name, known or not, so guessing names gains nothing. A
    success clears the name. The table is bounded: the oldest names are forgotten first.
    """

    def __init__(self, free_attempts: int = 5, base_delay: float = 30.0, max_delay: float = 900.0,
                 max_names: int = 10_000, clock=time.monotonic):
        self.free_attempts = free_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_names = max_names
        self.clock = clock
        self._misses: OrderedDict[str, tuple[int, float]] = OrderedDict()  # name -> (count, locked until)
        self._lock = threading.Lock()

    @staticmethod
    def _key(name: str) -> str:
        return (name or "").lower()

    def wait_seconds(self, name: str) -> float:
        """How long this name must still wait before a password is even checked (0: go)."""
        with self._lock:
            _, until = self._misses.get(self._key(name), (0, 0.0))
        return max(0.0, until - self.clock())

    def failed(self, name: str) -> None:
        key = self._key(name)
        with self._lock:
            count, _ = self._misses.pop(key, (0, 0.0))
            count += 1
            until = 0.0
            if count >= self.free_attempts:
                delay = min(self.max_delay, self.base_delay * 2 ** (count - self.free_attempts))
                until = self.clock() + delay
            self._misses[key] = (count, until)
            while len(self._misses) > self.max_names:
                self._misses.popitem(last=False)

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._misses.pop(self._key(name), None)


@dataclass(frozen=True)
class Login:
    """A logged-in person (or a read-only API token: role "token")."""

    name: str
    role: str

    @property
    def is_manager(self) -> bool:
        return self.role == "manager"

    @property
    def can_act(self) -> bool:
        """Tokens read; people act."""
        return self.role in ROLES


class SessionTable:
    """Server-side login sessions: the cookie holds only a random id, so logging out (or
    a page restart) really ends the session, even for a copied cookie."""

    def __init__(self, idle_seconds: float = 12 * 3600, max_sessions: int = 1000, clock=time.monotonic):
        self.idle_seconds = idle_seconds
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: OrderedDict[str, tuple[Login, float]] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, login: Login) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[sid] = (login, self.clock())
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        return sid

    def get(self, sid: str | None) -> Login | None:
        if not sid:
            return None
        with self._lock:
            found = self._sessions.get(sid)
            if found is None:
                return None
            login, seen = found
            now = self.clock()
            if now - seen > self.idle_seconds:
                del self._sessions[sid]
                return None
            self._sessions[sid] = (login, now)
            self._sessions.move_to_end(sid)
            return login

    def end(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)


def verify_password(store, name: str, password: str) -> Login | None:
    """The user if the name is valid and the password matches its stored hash."""
    user = store.user(name) if valid_user_name(name) else None
    if user is None or user.get("role") not in ROLES:
        check_password(password, _DUMMY_HASH)
        return None
    if not check_password(password, user["password_hash"]):
        return None
    return Login(user["name"], user["role"])


def token_login(store, header: str | None) -> Login | None:
    """`Authorization: Bearer TOKEN` -> a read-only login, if the token's hash is stored."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 256:
        return None
    found = store.token_by_hash(hashlib.sha256(token.encode()).hexdigest())
    if found is None:
        return None
    return Login(f"token {found['id']} ({found['name']})", "token")


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and secrets.compare_digest(str(expected), str(given))
