"""Who gave an act that needs a manager: checked by the daemon itself, whoever asks
(README, "Who may override, from where").

The page passes its logged-in manager's name: the page's own process (its OS user, in the
daemon's group and never a technician; or the daemon's own user, as in the demo) is
trusted to have checked that manager's password at login. Anyone else (a technician's
SSH account, root) must send the manager's name AND password, which the daemon checks
against the record; `pendock override` asks for both on standard input.
"""
from __future__ import annotations

import os
import threading
import time

from appliance.core import inputs
from appliance.daemon.control import Denied, Peer

MAX_GUESSES, GUESS_WINDOW_S = 5, 900.0  # wrong manager passwords per name, per 15 minutes


class GuessLimit:
    """Wrong manager passwords on the socket, counted per manager name: after MAX_GUESSES
    in GUESS_WINDOW_S that name's password is not checked again until the window passes
    (the page's logged-in manager is not affected: it sends no password)."""

    def __init__(self, clock=time.monotonic):
        self._clock, self._lock = clock, threading.Lock()
        self._misses: dict[str, list[float]] = {}

    def _recent(self, name: str) -> list[float]:
        now = self._clock()
        kept = [t for t in self._misses.get(name, []) if now - t < GUESS_WINDOW_S]
        self._misses[name] = kept
        return kept

    def check_allowed(self, name: str) -> None:
        with self._lock:
            if len(self._recent(name)) >= MAX_GUESSES:
                raise Denied(f"{MAX_GUESSES} wrong passwords for manager {name!r} in the last "
                             f"{GUESS_WINDOW_S / 60:.0f} minutes: wait, or give the override on the page")

    def missed(self, name: str) -> None:
        with self._lock:
            self._recent(name).append(self._clock())


GUESSES = GuessLimit()  # one per daemon process


def is_page(peer: Peer) -> bool:
    """The page's process, as the kernel names it: not a technician's account, or the
    daemon's own user (the demo runs page and daemon as one user)."""
    return not peer.technician or peer.uid == os.getuid()


def manager_for(args: dict, peer: Peer, store, act: str, *, page_may: bool = True,
                guesses: GuessLimit | None = None) -> str:
    """The name of the manager who gave `act`, checked; Denied (nothing done) otherwise.
    `page_may`: the page's word for its logged-in manager is enough (not for the acts the
    page never asks, such as making a manager)."""
    name = args.get("manager")
    password = args.get("manager_password")
    how = ("the page sends its logged-in manager; `pendock override` asks for a manager's "
           "name and password on standard input, `pendock user ... --manager NAME` for that "
           "manager's password after the new one")
    if not isinstance(name, str) or not inputs.valid_user_name(name):
        raise Denied(f"{act.replace('_', ' ')} is a manager's act: name the manager who gives it ({how})")
    user = store.user(name)
    if password is None:
        if not (page_may and is_page(peer)):
            raise Denied(f"{peer.user} is a technician's account: {act.replace('_', ' ')} needs a "
                         f"manager's name and password ({how}); nothing was changed")
        if user is None or not inputs.role_may(user.get("role"), act):
            raise Denied(f"{name!r} is not a manager of this dock: log in as a manager")
        return name
    # Loaded only here: the daemon hashes nothing else (bar P4, appliance/core/digest.py).
    from appliance.record.passwords import check_password

    guesses = guesses or GUESSES
    guesses.check_allowed(name)
    if (not isinstance(password, str) or user is None or not inputs.role_may(user.get("role"), act)
            or not check_password(password, str(user.get("password_hash") or ""))):
        guesses.missed(name)
        raise Denied("no manager of this dock has that name and password: nothing was changed")
    return name
