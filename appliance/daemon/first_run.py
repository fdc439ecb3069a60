"""First run: the first manager, the clinic's name and phone, time zone and language, set
from the page's setup form, guarded by a one-time setup code.

The code is made by the daemon while the record has no manager, kept in the data folder
(0600, the daemon's alone, so the page and the LAN cannot read it), printed by the
installer and by `pendock setup-code` over SSH (technicians only). The page sends the
form here (`setup`); this module checks the code, refuses once a manager exists, and only
then adds the manager and writes the settings. First run is closed for good as soon as a
manager exists: the code is deleted and `setup` refuses.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from appliance.core import first_run, inputs
from appliance.core.config import ConfigError
from appliance.daemon import accounts
from appliance.daemon.control import BadRequest, ControlServer, Refused
from appliance.daemon.dock import Dock
from appliance.record.store import StorageError

log = logging.getLogger("pendock.first_run")
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone
CODE_LENGTH = 12  # 60 bits: not guessable over the LAN
WRONG_CODES_ALLOWED = 10  # then a new code is made (`pendock setup-code` shows it)
CLOSED = "first run is closed: this dock has a manager already (log in, or ask a technician: `pendock user add`)"


def new_code() -> str:
    """12 of 32 letters from the kernel's random source (32 divides 256: no bias), in 3 groups;
    os.urandom, not `secrets`, which would load hashlib into the daemon (its footprint test)."""
    letters = [CODE_ALPHABET[byte % 32] for byte in os.urandom(CODE_LENGTH)]
    return "-".join("".join(letters[i:i + 4]) for i in range(0, CODE_LENGTH, 4))


def write_code(path: Path) -> str:
    code = new_code()
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(code + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return code


def same_code(given: object, expected: str) -> bool:
    """Case, spaces and dashes as a person types them; compared in constant time."""
    if not isinstance(given, str):
        return False
    norm = lambda text: "".join(ch for ch in text.upper() if ch.isalnum())  # noqa: E731
    return _same_bytes(norm(given[:64]).encode(), norm(expected).encode())


def _same_bytes(a: bytes, b: bytes) -> bool:
    """Constant time for codes of one length (hmac.compare_digest would load hashlib into the daemon)."""
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a, b, strict=True):
        diff |= x ^ y
    return diff == 0


def _text(args: dict, key: str, limit: int) -> str:
    value = args.get(key)
    if not isinstance(value, str):
        raise BadRequest(f"setup needs {key} (text)")
    return value.strip()[:limit]


def register(server: ControlServer, dock: Dock) -> None:
    store, clock = dock.store, dock.clock
    data_dir = store.path.parent
    code_file = data_dir / first_run.SETUP_CODE_NAME
    wrong = {"count": 0}

    def has_manager() -> bool:
        return any(u["role"] == "manager" for u in store.users())

    def current_code() -> str | None:
        """The code while first run is open (made if missing); None once a manager exists."""
        if has_manager():
            code_file.unlink(missing_ok=True)
            return None
        try:
            found = code_file.read_text().strip()
        except FileNotFoundError:
            found = ""
        return found or write_code(code_file)

    def setup_code(args, peer):
        with dock.lock:
            code = current_code()
        if code is None:
            raise Refused(CLOSED)
        return {"code": code, "open": True}

    def setup(args, peer):
        name = inputs.check_user_name(args.get("name"))
        password_hash = accounts.password_hash_arg(args)
        clinic_name, phone = _text(args, "clinic_name", 80), _text(args, "clinic_phone", 40)
        timezone, locale = _text(args, "timezone", 64), _text(args, "locale", 16)
        try:
            first_run.check_settings(clinic_name, phone, timezone, locale)
        except ConfigError as error:
            raise BadRequest(str(error).replace("the setup form: ", "")) from None
        with dock.lock:
            code = current_code()
            if code is None:
                raise Refused(CLOSED)
            if not same_code(args.get("code"), code):
                wrong["count"] += 1
                if wrong["count"] >= WRONG_CODES_ALLOWED:
                    wrong["count"] = 0
                    write_code(code_file)
                    log.warning("setup: %d wrong setup codes; a new code was made", WRONG_CODES_ALLOWED)
                raise Refused("the setup code is not right: it was printed at install; "
                              "`sudo pendock setup-code` on the dock shows it")
            now, synced = clock.now(), dock.observe_clock()
            store.add_user(name, "manager", password_hash, now, actor=peer.actor, clock_synced=synced)
            settings = data_dir / first_run.SETTINGS_NAME
            tmp = settings.with_suffix(".tmp")
            tmp.write_text(first_run.settings_text(clinic_name, phone, timezone, locale), encoding="utf-8")
            os.chmod(tmp, 0o640)
            os.replace(tmp, settings)
            code_file.unlink(missing_ok=True)
            store.audit(peer.actor, "first_run", {"manager": name, "clinic": clinic_name, "timezone": timezone,
                                                  "locale": locale}, now, synced)
            dock.config = _with_settings(dock)
            clinic = dock.config.clinic
        # What is in effect: the config file's own keys win over the form's (core/first_run.py).
        return {"manager": name, "clinic_name": clinic.name, "clinic_phone": clinic.phone,
                "timezone": dock.config.dock.timezone, "locale": clinic.locale}

    with dock.lock:
        if current_code() is not None:
            log.info("first run is open: no manager yet; `pendock setup-code` shows the setup code")
    server.register("setup_code", setup_code, technician=True, errors={StorageError: "refused", OSError: "refused"})
    server.register("setup", setup, errors={StorageError: "refused", OSError: "refused"})


def _with_settings(dock: Dock):
    """The running daemon's config with the new settings where its config file is silent."""
    source = dock.config_source
    try:
        text = Path(str(source)).read_text(encoding="utf-8") if source else ""
    except OSError:
        text = ""
    config = first_run.layered(dock.config, text, dock.store.path.parent)
    if hasattr(dock.clock, "tz"):
        dock.clock.tz = config.tz
    return config
