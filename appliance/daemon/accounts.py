"""The technician's commands for the page's users and the API's tokens: list and revoke
tokens, remove a user, set a user's password. Each is audited (never a hash).

Registered on the control socket beside the other technician commands (commands.py).
The page checks the record on every request, so a removed user, a new password or a
revoked token ends that access at once, without restarting the page.
"""
from __future__ import annotations

from appliance.core import inputs
from appliance.daemon import authority
from appliance.daemon.control import BadRequest, ControlServer, Peer, Refused
from appliance.daemon.dock import Dock
from appliance.record.store import StorageError


def password_hash_arg(args: dict) -> str:
    """The one check of a sent password hash (user add, user passwd): the CLI's scrypt."""
    value = args.get("password_hash")
    if not isinstance(value, str) or not value.startswith("scrypt$") or len(value) > 512:
        raise BadRequest("password_hash must be made by `pendock user add` or `pendock user passwd` (scrypt)")
    return value


def check_may_make(role: str, args: dict, peer: Peer, store) -> None:
    """Giving an account a manager's powers (a new manager, or a manager's new password)
    takes a manager's name and password, checked here; only the first manager of a new
    dock is made without one. So a technician's account cannot make itself a manager."""
    if not inputs.role_may(role, "override"):
        return
    if any(inputs.role_may(u["role"], "override") for u in store.users()):
        authority.manager_for(args, peer, store, "add_manager", page_may=False)


def register(server: ControlServer, dock: Dock) -> None:
    store, clock = dock.store, dock.clock

    def token_list(args, peer):
        return store.tokens()

    def token_revoke(args, peer):
        ref = args.get("ref")
        if isinstance(ref, bool) or not isinstance(ref, (int, str)) or str(ref).strip() == "":
            raise BadRequest("token revoke needs the token's id or name (see `pendock token list`)")
        text = str(ref).strip()
        tokens = store.tokens()
        found = [t for t in tokens if str(t["id"]) == text] or [t for t in tokens if t["name"] == text]
        if not found:
            raise Refused(f"no API token with the id or name {text[:64]!r}: see `pendock token list`")
        if len(found) > 1:
            ids = ", ".join(str(t["id"]) for t in found)
            raise Refused(f"{len(found)} tokens are named {text[:64]!r} (ids {ids}): revoke one by its id")
        with dock.lock:
            store.revoke_token(found[0]["id"], clock.now(), actor=peer.actor, clock_synced=dock.observe_clock())
        return {"id": found[0]["id"], "name": found[0]["name"], "revoked": True}

    def user_remove(args, peer):
        name = inputs.check_user_name(args.get("name"))
        with dock.lock:
            user = store.user(name)
            if user is None:
                raise Refused(f"there is no user {name!r}")
            if user["role"] == "manager" and [u["name"] for u in store.users() if u["role"] == "manager"] == [name]:
                raise Refused(f"{name} is the last manager: add another manager first "
                              f"(`pendock user add NAME --role manager`), so someone may still override")
            store.remove_user(name, clock.now(), actor=peer.actor, clock_synced=dock.observe_clock())
        return {"name": name, "removed": True}

    def user_passwd(args, peer):
        name = inputs.check_user_name(args.get("name"))
        password_hash = password_hash_arg(args)
        user = store.user(name)
        if user is None:
            raise Refused(f"there is no user {name!r}: add one with `pendock user add {name} --role ROLE`")
        check_may_make(user["role"], args, peer, store)  # a slow hash: not under the dock's lock
        with dock.lock:
            store.set_password(name, password_hash, clock.now(), actor=peer.actor, clock_synced=dock.observe_clock())
        return {"name": name, "password_changed": True}

    for name, handler in (("token_list", token_list), ("token_revoke", token_revoke),
                          ("user_remove", user_remove), ("user_passwd", user_passwd)):
        server.register(name, handler, technician=True, errors={StorageError: "refused"})
