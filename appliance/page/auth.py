"""Who may use the page: logins, their throttle, server-side sessions, API tokens, CSRF.

All of it lives in the page process's memory on purpose: the page may not write the data
folder, and a page restart ending every login is acceptable. Passwords are checked with
the slow salted hash of `pendock user add` (appliance/record/passwords.py).
"""
from __future__ import annotations

import functools
import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import unquote

from appliance.core import inputs
from appliance.core.inputs import ROLES
from appliance.record.passwords import check_password, password_hash

USER_NAME = inputs.USER_NAME
MAX_PASSWORD = 1024
SESSION_HOURS = 12  # the default absolute lifetime of a login (config web.session_hours)


@functools.cache  # made at the first login, not at import (a 16 MB scrypt)
def _dummy_hash() -> str:
    """Checked when the name is unknown, so a wrong name costs as long as a wrong password."""
    return password_hash("not a password of anyone")


def valid_user_name(name: str) -> bool:
    """The one rule for user names, shared with `pendock user add` (appliance/core/inputs.py)."""
    return inputs.valid_user_name(name)


class _Backoff:
    """Misses per key: after `free` misses in a row the key waits `base` seconds, doubling
    with each further miss up to `most`. Bounded: the oldest keys are forgotten first."""

    def __init__(self, free: int, base: float, most: float, max_keys: int):
        self.free, self.base, self.most, self.max_keys = free, base, most, max_keys
        self.misses: OrderedDict[object, tuple[int, float]] = OrderedDict()  # key -> (count, until)

    def wait(self, key: object, now: float) -> float:
        _, until = self.misses.get(key, (0, 0.0))
        return max(0.0, until - now)

    def miss(self, key: object, now: float) -> None:
        count, _ = self.misses.pop(key, (0, 0.0))
        count += 1
        until = 0.0
        if count >= self.free:
            until = now + min(self.most, self.base * 2 ** (count - self.free))
        self.misses[key] = (count, until)
        while len(self.misses) > self.max_keys:
            self.misses.popitem(last=False)

    def clear(self, key: object) -> None:
        self.misses.pop(key, None)


class LoginThrottle:
    """Wrong passwords slow down the one who types them, not the clinic's staff.

    Misses are counted, in memory, four ways:
    - per (name, client address): after `free_attempts` wrong passwords in a row that name
      waits `base_delay` seconds from that address, doubling up to `max_delay`;
    - per address, whatever the names: after `free_per_address` misses;
    - per name across every address: after `free_per_name` misses that name waits
      `base_delay`, doubling up to `max_name_delay`, from every address except the
      devices where it logged in since the page started (`known`), so guesses spread over
      many addresses are capped while the staff's own tablets are not locked out;
    - overall: at most `overall_per_minute` misses a minute (a bucket that refills),
      except, again, from a name's known devices.
    Names are lower-cased and counted known or not, so guessing names gains nothing. A
    success clears that name at that address.

    Attempts refused while waiting are only counted here (`refused`); the login route
    writes them down with its once-a-minute entry per address (`AuditGate`).
    """

    def __init__(self, free_attempts: int = 5, base_delay: float = 30.0, max_delay: float = 900.0,
                 max_names: int = 10_000, clock=time.monotonic, free_per_address: int = 20,
                 free_per_name: int = 10, max_name_delay: float = 300.0, overall_per_minute: int = 30):
        self.free_attempts = free_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.clock = clock
        self._pairs = _Backoff(free_attempts, base_delay, max_delay, max_names)
        self._addresses = _Backoff(free_per_address, base_delay, max_delay, max_names)
        self._names = _Backoff(free_per_name, base_delay, max_name_delay, max_names)
        self._known: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._overall = _Bucket(overall_per_minute, overall_per_minute / 60.0, clock())
        self._refused: OrderedDict[tuple[str, str], int] = OrderedDict()
        self.max_names = max_names
        self._lock = threading.Lock()

    @staticmethod
    def _key(name: str, address: str) -> tuple[str, str]:
        return ((name or "").lower(), address or "")

    def wait_seconds(self, name: str, address: str = "") -> float:
        """How long this name must still wait at this address before a password is even checked (0: go)."""
        now = self.clock()
        key = self._key(name, address)
        with self._lock:
            waits = [self._pairs.wait(key, now), self._addresses.wait(address or "", now)]
            if key not in self._known:
                waits += [self._names.wait(key[0], now), self._overall.wait(now)]
            return max(waits)

    def failed(self, name: str, address: str = "") -> None:
        now = self.clock()
        key = self._key(name, address)
        with self._lock:
            self._pairs.miss(key, now)
            self._addresses.miss(address or "", now)
            if key not in self._known:
                self._names.miss(key[0], now)
                self._overall.take(now)

    def succeeded(self, name: str, address: str = "") -> None:
        key = self._key(name, address)
        with self._lock:
            self._pairs.clear(key)
            self._addresses.clear(address or "")
            self._known.pop(key, None)
            self._known[key] = None
            while len(self._known) > self.max_names:
                self._known.popitem(last=False)

    def refused(self, name: str, address: str = "") -> int:
        """Count one attempt refused while waiting; returns how many in this burst (1: the first)."""
        key = self._key(name, address)
        with self._lock:
            count = self._refused.pop(key, 0) + 1
            self._refused[key] = count
            while len(self._refused) > self.max_names:
                self._refused.popitem(last=False)
            return count

    def summary(self, name: str, address: str = "") -> int:
        """Attempts refused (and not yet written down) since the last checked one; resets."""
        with self._lock:
            return self._refused.pop(self._key(name, address), 0)


class _Bucket:
    """`size` tokens, refilled at `rate` a second: the overall cap on wrong passwords."""

    def __init__(self, size: int, rate: float, now: float):
        self.size, self.rate = float(size), rate
        self.tokens, self.at = float(size), now

    def _fill(self, now: float) -> None:
        self.tokens = min(self.size, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = now

    def wait(self, now: float) -> float:
        self._fill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self._fill(now)
        self.tokens = max(0.0, self.tokens - 1)


class AuditGate:
    """What an unauthenticated request may write to the record: one entry a minute per
    client address (S8). The attempts in between are counted here, in memory, and their
    number goes with that address's next entry (`unwritten`), so nothing is lost from the
    count and a flood costs one durable write a minute per source."""

    def __init__(self, every_s: float = 60.0, max_sources: int = 10_000, clock=time.monotonic):
        self.every_s, self.max_sources, self.clock = every_s, max_sources, clock
        self._sources: OrderedDict[str, tuple[float, int]] = OrderedDict()  # address -> (last write, unwritten)
        self._lock = threading.Lock()

    def may_write(self, address: str) -> int | None:
        """None: count this attempt only; else write now, with this many unwritten before it."""
        now = self.clock()
        with self._lock:
            last, unwritten = self._sources.pop(address, (float("-inf"), 0))
            if now - last < self.every_s:
                self._sources[address] = (last, unwritten + 1)
                answer = None
            else:
                self._sources[address] = (now, 0)
                answer = unwritten
            while len(self._sources) > self.max_sources:
                self._sources.popitem(last=False)
            return answer

    def written(self, address: str) -> int:
        """An entry from this address is written anyway (a login): the unwritten count, reset."""
        with self._lock:
            last, unwritten = self._sources.pop(address, (float("-inf"), 0))
            if last != float("-inf"):
                self._sources[address] = (last, 0)
            return unwritten


def safe_next(text: str | None) -> str:
    """Where to go after a login: a path on this dock, else `/`; never an open redirect.

    Only a plain path of safe characters: no scheme or host, no `//` or `/\\` start, no
    control characters or spaces (a browser drops a tab, so `/\t/evil.example/` would
    become `//evil.example/`), no backslash."""
    if not text or len(text) > 200 or not _SAFE_NEXT.fullmatch(text):
        return "/"
    decoded = unquote(text)  # nor once decoded, in case something on the way decodes it again
    if text[1:2] in ("/", "\\") or decoded[1:2] in ("/", "\\") or "\\" in decoded \
            or any(ord(c) < 0x21 or ord(c) == 0x7F for c in decoded):
        return "/"
    return text


_SAFE_NEXT = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*")


@dataclass(frozen=True)
class Login:
    """A logged-in person (or a read-only API token: role "token")."""

    name: str
    role: str
    stamp: str = ""  # of the password hash it was made with: a new password ends it

    @property
    def is_manager(self) -> bool:
        """May override: the role table's word (inputs.ROLE_ACTS); the daemon checks it too."""
        return inputs.role_may(self.role, "override")

    @property
    def can_act(self) -> bool:
        """Tokens read; people act."""
        return self.role in ROLES


class SessionTable:
    """Server-side login sessions: the cookie holds only a random id, so logging out (or
    a page restart) really ends the session, even for a copied cookie. A session is bound
    to the client address it logged in from: the same cookie from another device on the
    Wi-Fi is no login (README, "HTTPS"), so a copied cookie is worth nothing elsewhere."""

    def __init__(self, idle_seconds: float = 12 * 3600, max_sessions: int = 1000, clock=time.monotonic,
                 max_seconds: float = SESSION_HOURS * 3600):
        self.idle_seconds = min(idle_seconds, max_seconds)
        self.max_seconds = max_seconds  # absolute: however active, a login ends this long after it began
        self.max_sessions = max_sessions
        self.clock = clock
        # sid -> (login, last seen, its idle limit, its absolute limit)
        self._sessions: OrderedDict[str, tuple[Login, float, float, float]] = OrderedDict()
        self._started: dict[str, float] = {}
        self._addresses: dict[str, str] = {}  # sid -> the client address it logged in from
        self._lock = threading.Lock()

    def start(self, login: Login, idle_seconds: float | None = None, max_seconds: float | None = None,
              address: str = "") -> str:
        """A new session from `address`; `idle_seconds` and `max_seconds` override the
        table's for this one (the wall display's read-only login, appliance/page/wall.py)."""
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[sid] = (login, self.clock(), idle_seconds or self.idle_seconds,
                                   max_seconds or self.max_seconds)
            self._started[sid] = self.clock()
            self._addresses[sid] = address
            while len(self._sessions) > self.max_sessions:
                dropped, _ = self._sessions.popitem(last=False)
                self._started.pop(dropped, None)
                self._addresses.pop(dropped, None)
        return sid

    def get(self, sid: str | None, address: str | None = None) -> Login | None:
        """The session's login, if it is still alive and (when `address` is given) asked
        for from the address it logged in from; another address leaves it for its owner."""
        if not sid:
            return None
        with self._lock:
            found = self._sessions.get(sid)
            if found is None:
                return None
            if address is not None and self._addresses.get(sid, "") != address:
                return None  # a copied cookie, from another device
            login, seen, idle, most = found
            now = self.clock()
            if now - seen > idle or now - self._started.get(sid, now) > most:
                del self._sessions[sid]
                self._started.pop(sid, None)
                self._addresses.pop(sid, None)
                return None
            self._sessions[sid] = (login, now, idle, most)
            self._sessions.move_to_end(sid)
            return login

    def end(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)
            self._started.pop(sid or "", None)
            self._addresses.pop(sid or "", None)

    def end_user(self, name: str) -> None:
        """End every login of this user (removed, or a new password)."""
        with self._lock:
            for sid in [sid for sid, (login, *_) in self._sessions.items() if login.name == name]:
                del self._sessions[sid]
                self._started.pop(sid, None)
                self._addresses.pop(sid, None)


def verify_password(store, name: str, password: str) -> Login | None:
    """The user if the name is valid and the password matches its stored hash."""
    user = store.user(name) if valid_user_name(name) else None
    if user is None or user.get("role") not in ROLES:
        check_password(password, _dummy_hash())
        return None
    if not check_password(password, user["password_hash"]):
        return None
    return Login(user["name"], user["role"], password_stamp(user["password_hash"]))


def password_stamp(stored_hash: str) -> str:
    return hashlib.sha256(stored_hash.encode()).hexdigest()[:16]


def still_valid(store, login: Login) -> bool:
    """A person's login holds while the user is there with the same role and password."""
    if login.role not in ROLES:
        return True  # a token's: checked against the record at every request anyway
    user = store.user(login.name)
    return (user is not None and user.get("role") == login.role
            and password_stamp(user["password_hash"]) == login.stamp)


def is_wall_token(name: str) -> bool:
    """A token named `wall`, or `wall-...` (`wall-room-1`), is a wall display's: it opens
    /wall through /wall/login and nothing else (never the API as a Bearer token)."""
    return _WALL_NAME.fullmatch(name or "") is not None


_WALL_NAME = re.compile(r"wall([-_.][A-Za-z0-9._-]*)?", re.IGNORECASE)


def token_login(store, header: str | None, *, wall: bool = False) -> Login | None:
    """`Authorization: Bearer TOKEN` -> a read-only login, if the token's hash is stored;
    a wall token only when `wall` (the wall's own login), any other only when not."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 256:
        return None
    found = store.token_by_hash(hashlib.sha256(token.encode()).hexdigest())
    if found is None or is_wall_token(found["name"]) != wall:
        return None
    return Login(f"token {found['id']} ({found['name']})", "token")


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and secrets.compare_digest(str(expected), str(given))
