"""The daemon's documented commands, registered on its control socket.

Each is a small function of (args, peer) that checks its input, asks the dock or the
store, and returns plain JSON-able data. Clinic commands (status, next client, override,
the day's log) are open to the socket's group (the page, technicians), but `override` is
a manager's act the daemon checks itself (authority.py); technician commands need root or
the technicians' group (see control.Peer).
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from appliance.hardware import frame
from appliance.core import inputs, rules
from appliance.daemon.control import BadRequest, ControlServer, Peer, Refused, flag
from appliance.daemon import accounts, authority
from appliance.daemon.dock import ClientRefused, Dock
from appliance.daemon.selftest import run_selftest
from appliance.daemon.files import copy_into, create_private_file, open_private_file, remove_if_same
from appliance.core.model import NextClient
from appliance.daemon import clock_commands, clockwatch, first_run
from appliance.record.restore import RestoreRefused
from appliance.record.store import StorageError



parse_day = inputs.parse_day  # the one date rule, shared with the page (YYYY-MM-DD exactly)


def _reason(args: dict) -> str:
    reason = str(args.get("reason") or "").strip()
    problem = inputs.reason_problem(reason)
    if problem:
        raise BadRequest(f"{problem}, e.g. --reason \"client's dermatologist approved\"")
    return reason


def register(server: ControlServer, dock: Dock) -> None:
    store, config, clock = dock.store, dock.config, dock.clock

    def audit(peer: Peer, action: str, detail: dict) -> None:
        try:
            store.audit(peer.actor, action, detail, clock.now(), dock.observe_clock())
        except StorageError as error:
            dock.storage_failed(error)  # the status says storage_error until a write succeeds
            raise Refused(f"{action} was not recorded, so it was not done: {error}") from None

    def name_client(client: NextClient | None) -> None:
        """The one way a command names or forgets the next client (Dock.name_client)."""
        try:
            dock.name_client(client)
        except ClientRefused as error:
            raise Refused(str(error)) from None

    def hold_for_naming() -> None:
        """Before anything else, the audit entry included: the latch held again, or, while
        the pen is out, Refused with nothing changed."""
        try:
            dock.hold_for_naming()
        except ClientRefused as error:
            raise Refused(str(error)) from None

    def link():
        """The clinic's link (appliance/fleet), or None for a dock that works alone."""
        return getattr(dock, "fleet", None)

    # -- clinic ------------------------------------------------------------------------
    def status(args, peer):
        shown = dock.status()
        shown.setdefault("fleet", None if link() is None else link().summary())
        return shown

    def next_client(args, peer):
        ref = rules.validate_client_ref(str(args.get("ref") or ""))
        area = rules.validate_area(args.get("area") or None, config)
        checklist = args.get("checklist") or ""
        if isinstance(checklist, list):
            checklist = ",".join(map(str, checklist))
        items = rules.parse_checklist(str(checklist))
        with dock.lock:
            hold_for_naming()
            audit(peer, "next_client", {"ref": ref, "area": area, "checklist": sorted(items)})
            name_client(NextClient(ref, area, items))
        dock.settle()
        return dock.status()

    def clear_client(args, peer):
        """Forget a wrongly named next client (and any override given for it): the pen is
        held again until the right client is named."""
        with dock.lock:
            hold_for_naming()
            was = dock.next_client
            audit(peer, "next_client_cleared", {"ref": was.ref if was else None})
            name_client(None)
        dock.settle()
        return dock.status()

    def override(args, peer):
        code = str(args.get("code") or "")
        reason = _reason(args)
        try:
            rules.validate_override(code)
        except rules.NotOverridable as error:
            raise Refused(str(error)) from None
        except ValueError as error:
            raise BadRequest(str(error)) from None
        manager = authority.manager_for(args, peer, store, "override")
        with dock.lock:
            if code not in dock.decision.locks:
                raise Refused(f"{code} is not holding the pen now, so there is nothing to override")
            client = dock.next_client
            audit(peer, "override", {"code": code, "reason": reason, "manager": manager,
                                     "client": client.ref if client else None,
                                     "area": client.area if client else None})
            dock.overrides[code] = reason
        dock.settle()
        return dock.status()

    def sessions(args, peer):
        day = parse_day(args.get("date"), clock.now().date())
        here = link()
        found = [{**s, "dock_id": here.dock_id if here else None} for s in store.sessions_on(day)]
        if args.get("all_docks") and here is not None:
            found += store.peer_sessions_on(day)
            found.sort(key=lambda s: (s["started_at"], s["dock_id"] or "", s["id"]), reverse=True)
        return found

    def fleet(args, peer):
        """This dock's place in the clinic: peers last heard, outbox, staleness, conflicts."""
        return None if link() is None else link().status()

    def login(args, peer):
        action = "login_throttled" if flag(args, "refused") else "login" if flag(args, "ok") else "login_failed"
        detail = {"user": str(args.get("user", ""))[:64], "remote": str(args.get("remote", ""))[:64]}
        for key, what in (("throttled", "refused attempts"), ("unwritten", "attempts not written down")):
            count = args.get(key, 0)
            if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count < 2**31:
                raise BadRequest(f"{key} must be a whole number of {what}")
            if count:
                # throttled: refused while slowed (S5); unwritten: from that address since its
                # last entry, which the page writes once a minute per address (S8).
                detail[key] = count
        audit(peer, action, detail)
        return {"recorded": True}

    # -- technician --------------------------------------------------------------------
    def docked_reading():
        if dock.reading is None:
            raise Refused("no pen is read in the cradle: dock the pen and check `pendock readout`")
        return dock.reading

    def service_reset(args, peer):
        reason = _reason(args)
        with dock.lock:
            reading = docked_reading()
            store.service_reset(reading.pen_serial, reading.motor_seconds, peer.actor, reason,
                                clock.now(), dock.observe_clock())
        dock.settle()
        return dock.status()

    def rebaseline(args, peer):
        reason = _reason(args)
        with dock.lock:
            reading = docked_reading()
            store.rebaseline(reading.pen_serial, reading.strokes, reading.motor_seconds, peer.actor,
                             reason, clock.now(), dock.observe_clock())
        dock.settle()
        return dock.status()

    def readout(args, peer):
        with dock.lock:
            if not dock.seated:
                raise Refused("no pen in the cradle: dock the pen first")
            raw = dock.hw.pen.read_raw()
        verdict, decoded = "ok", None
        try:
            reading = frame.decode(raw)
            decoded = {k: (sorted(v) if isinstance(v, frozenset) else v) for k, v in reading.__dict__.items()}
        except frame.FrameError as error:
            verdict = f"{type(error).__name__}: {error}"
        return {
            "hex": raw.hex(" "),
            "length": len(raw),
            "crc": "ok" if verdict == "ok" else verdict,
            "fields": [field.__dict__ for field in frame.describe(raw)],
            "reading": decoded,
        }

    def pins(args, peer):
        with dock.lock:
            return dock.hw.levels()

    def selftest(args, peer):
        return run_selftest(dock)

    def audit_verify(args, peer):
        result = store.verify_audit()
        return result.__dict__ if hasattr(result, "__dict__") else dict(result._asdict())

    def user_add(args, peer):
        name = inputs.check_user_name(args.get("name"))  # the login form's own rule
        role = str(args.get("role") or "")
        inputs.validate_role(role)
        password_hash = accounts.password_hash_arg(args)
        accounts.check_may_make(role, args, peer, store)  # a slow hash: not under the dock's lock
        with dock.lock:
            if store.user(name) is not None:
                raise Refused(f"user {name!r} exists already: choose another name")
            store.add_user(name, role, password_hash, clock.now(), actor=peer.actor,
                           clock_synced=dock.observe_clock())
        return {"name": name, "role": role}

    def token_create(args, peer):
        name = str(args.get("name") or "api")[:64]
        token_hash = str(args.get("token_hash") or "")
        if len(token_hash) != 64:
            raise BadRequest("token_hash must be the sha256 hex of the token")
        with dock.lock:
            token_id = store.add_token(name, token_hash, clock.now(), actor=peer.actor,
                                       clock_synced=dock.observe_clock())
        return {"id": token_id, "name": name}

    def backup(args, peer):
        target = Path(str(args.get("path") or ""))
        if not target.is_absolute():
            raise BadRequest("backup needs an absolute path for the copy")
        try:
            # 0600 from the start (it holds password and token hashes), and written through
            # this descriptor only: a symlink swapped in at the path later changes nothing.
            fd = open_private_file(target)
        except FileExistsError:
            raise Refused(f"{target} exists already: choose a new file name (nothing is overwritten)") from None
        except OSError as error:
            raise Refused(f"cannot create {target}: {error.strerror}; choose a folder the dock may write") from None
        scratch = store.path.parent / f".backup-{os.urandom(6).hex()}.db"
        try:
            create_private_file(scratch)  # in the data folder, which nobody else may write
            with dock.lock:
                store.backup_to(scratch)
            check = sqlite3.connect(scratch, isolation_level=None)
            try:
                check.execute("PRAGMA journal_mode = DELETE")  # one self-contained file to copy
                verdict = check.execute("PRAGMA integrity_check").fetchone()[0]
            finally:
                check.close()
            copy_into(scratch, fd)
            size = os.fstat(fd).st_size
        except BaseException:
            remove_if_same(target, fd)
            raise
        finally:
            os.close(fd)
            for leftover in (scratch, scratch.with_name(scratch.name + "-wal"), scratch.with_name(scratch.name + "-shm")):
                leftover.unlink(missing_ok=True)
        audit(peer, "backup", {"path": str(target), "integrity": verdict})
        if verdict != "ok":
            raise Refused(f"the backup at {target} failed its integrity check: {verdict}")
        return {"path": str(target), "integrity": verdict, "bytes": size}

    def restore(args, peer):
        source = Path(str(args.get("path") or ""))
        if not source.is_absolute() or not source.is_file():
            raise BadRequest(f"restore needs the absolute path of a backup file, got {str(source)!r}")
        with dock.lock:
            if dock.session is not None or store.open_sessions():
                raise Refused("a session is open: dock the pen and let it close before restoring")
            try:
                detail = store.restore_from(source, peer.actor, clock.now(), dock.observe_clock())
            except RestoreRefused as error:
                raise Refused(str(error)) from None
            # The named client stays, judged again on the merged history at settle(); an
            # override was given on the history before, so it goes.
            dock.overrides = {}
        dock.settle()
        return {"restored": str(source), "added": detail["added"], "same_dock": detail["same_dock"]}

    def purge(args, peer):
        asked_text = args.get("before")
        if asked_text is not None and (not isinstance(asked_text, str) or not asked_text.strip()):
            raise BadRequest("--before needs a date, YYYY-MM-DD (it was empty); leave --before out "
                             "to purge by the retention period")
        with dock.lock:
            state = dock.clockwatch.observe()
        if not state.known_right:
            raise Refused(f"purge and retention wait for a clock known to be right; the clock is "
                          f"{clockwatch.describe(state)}")
        now = state.effective_now
        asked = parse_day(asked_text, now.date()) if asked_text else None
        try:
            before = rules.purge_cutoff(now.date(), asked, config)
        except rules.PurgeRefused as error:
            raise Refused(str(error)) from None
        with dock.lock:
            count = store.purge_before(before, peer.actor, now, dock.observe_clock())
        return {"purged": count, "before": before.isoformat()}

    for name, handler in (("status", status), ("next_client", next_client), ("override", override),
                          ("sessions", sessions), ("login", login), ("clear_client", clear_client),
                          ("fleet", fleet)):
        server.register(name, handler, errors={StorageError: "refused"})
    for name, handler in (("service_reset", service_reset), ("rebaseline", rebaseline),
                          ("readout", readout), ("pins", pins), ("selftest", selftest),
                          ("audit_verify", audit_verify), ("user_add", user_add),
                          ("token_create", token_create), ("backup", backup),
                          ("restore", restore), ("purge", purge)):
        server.register(name, handler, technician=True, errors={StorageError: "refused"})
    accounts.register(server, dock)
    clock_commands.register(server, dock)
    first_run.register(server, dock)  # the setup form's `setup` and `pendock setup-code`
    for command in server.commands.values():
        command.handler = _noting_storage_errors(command.handler, dock)


def _noting_storage_errors(handler, dock: Dock):
    """Any command whose write failed leaves storage_error on the dock (the pen held)
    until a write succeeds again, whatever that command was."""
    def noting(args, peer):
        try:
            return handler(args, peer)
        except StorageError as error:
            if dock.storage_ok:
                dock.storage_failed(error)
            raise
    return noting
