"""`make demo-chain`: a chain on one machine, for a newcomer. A throwaway PostgreSQL (its
own cluster on a Unix socket), a central Mosquitto, two clinics (north, south) each with
its Mosquitto bridged to the central one (`pendock chain provision --anonymous`), two
`pendock demo --clinic` docks in each with their pages, the ingest worker and the owner's
page (owner / pendock-demo). Ctrl-C stops everything; the docks' records are kept, the database is not (the docks fill it
again: their records are the truth).
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from appliance.chain.provision import provision
from appliance.children import python_command, python_env
from appliance.core import paths
from appliance.demo_clinic import _free_port, _wait_listening

CLINICS = {"north": ("n-1", "n-2"), "south": ("s-1", "s-2")}
DEMO_PASSWORD = "pendock-demo"  # the owner's page of the demo only


def _postgres(children: list[subprocess.Popen]) -> tuple[str, Path, list[str]]:
    """initdb + pg_ctl in a temporary folder, as `postgres` when run as root."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("Debian's postgresql is not installed: sudo apt-get install postgresql")
    bin_dir = Path(found[-1]).parent
    home = Path(tempfile.mkdtemp(prefix="pendock-chain-pg-"))
    os.chmod(home, 0o755)
    root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if root else []
    user = "postgres" if root else os.environ.get("USER", "postgres")
    if root:
        shutil.chown(home, "postgres", "postgres")
    run = lambda *a: subprocess.run(prefix + list(a), check=True, capture_output=True)  # noqa: E731
    run(str(bin_dir / "initdb"), "-D", str(home / "data"), "-A", "trust", "-U", user, "-E", "UTF8")
    run(str(bin_dir / "pg_ctl"), "-D", str(home / "data"), "-l", str(home / "log"), "-w",
        "-o", f"-c listen_addresses='' -k {home} -p 5432", "start")
    run(str(bin_dir / "createdb"), "-h", str(home), "-U", user, "pendock")
    stop = prefix + [str(bin_dir / "pg_ctl"), "-D", str(home / "data"), "-m", "fast", "stop"]
    return f"postgresql://{user}@/pendock?host={home}&port=5432", home, stop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo-chain")
    parser.add_argument("--port", type=int, default=8080, help="n-1's page; the others the next ports")
    parser.add_argument("--folder", help="the chain's files (default: beside the demo's record)")
    args = parser.parse_args(argv)
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    folder = Path(args.folder or paths.demo_data_dir().parent / "pendock-chain")
    central_port = _free_port()
    ports = {clinic: _free_port() for clinic in CLINICS}
    files = folder / "chain"
    if files.exists():
        shutil.rmtree(files / "brokers", ignore_errors=True)  # fresh ports, the keys are kept
    provision(files, f"mqtt://127.0.0.1:{central_port}",
              [f"{c}=mqtt://127.0.0.1:{p}" for c, p in ports.items()], anonymous=True)
    children: list[subprocess.Popen] = []
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    pg_stop: list[str] = []
    pg_home: Path | None = None
    try:
        database, pg_home, pg_stop = _postgres(children)
        print(f"PostgreSQL: {database}")
        confs = [(files / "central" / "mosquitto.conf", central_port)] + [
            (files / "brokers" / c / "mosquitto.conf", p) for c, p in ports.items()]
        for conf, port in confs:
            text = conf.read_text().replace(f"listener {port}\n", f"listener {port} 127.0.0.1\n")
            conf.write_text(text)
            broker = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                      stderr=open(folder / f"{conf.parent.name}.log", "ab"))
            children.append(broker)
            if not _wait_listening(port, broker):
                print(f"pendock: mosquitto did not start; see {folder / (conf.parent.name + '.log')}",
                      file=sys.stderr)
                return 2
        print(f"Central broker: mqtt://127.0.0.1:{central_port}; clinics bridged: "
              + ", ".join(f"{c} mqtt://127.0.0.1:{p}" for c, p in ports.items()))
        page = args.port
        for clinic, docks in CLINICS.items():
            ring = folder / clinic / "fleet-keys"  # each clinic's demos trust each other
            ring.mkdir(parents=True, exist_ok=True)
            shutil.copy(files / "chain.pub", ring / "chain.pub")
            registry = files / "worker" / "keys" / clinic
            for dock in docks:
                data = folder / clinic / dock
                data.mkdir(parents=True, exist_ok=True)
                env = dict(os.environ, PENDOCK_DATA=str(data), XDG_RUNTIME_DIR=str(data.parent / f"{dock}-run"))
                env.pop("PENDOCK_CONFIG", None)
                Path(env["XDG_RUNTIME_DIR"]).mkdir(exist_ok=True)
                children.append(subprocess.Popen(
                    python_command("appliance", "demo", "--port", str(page), "--broker",
                                   f"mqtt://127.0.0.1:{ports[clinic]}", "--dock-id", dock, "--clinic", clinic),
                    env=python_env(env)))
                print(f"{clinic}/{dock}: http://127.0.0.1:{page}/   CLI: PENDOCK_DATA={data} pendock fleet",
                      flush=True)
                page += 1
                deadline = time.monotonic() + 30
                while not (ring / f"{dock}.pub").exists() and time.monotonic() < deadline:
                    time.sleep(0.2)
                if (ring / f"{dock}.pub").exists():
                    shutil.copy(ring / f"{dock}.pub", registry / f"{dock}.pub")
        children.append(subprocess.Popen(
            python_command("appliance", "chain", "ingest", "--broker", f"mqtt://127.0.0.1:{central_port}",
                           "--database", database, "--keys-dir", str(files / "worker" / "keys")),
            env=python_env(), stdout=open(folder / "worker.log", "ab"), stderr=subprocess.STDOUT))
        from appliance.chain.page import add_user
        from appliance.chain import store as chain_store

        with chain_store.connect(database) as conn:
            chain_store.create(conn)
        add_user(database, "owner", DEMO_PASSWORD)
        children.append(subprocess.Popen(
            python_command("appliance", "chain", "page", "--database", database, "--port", str(page)),
            env=python_env(), stdout=open(folder / "page.log", "ab"), stderr=subprocess.STDOUT))
        print(f"Ingest worker: log in {folder / 'worker.log'}.\nThe owner's page: http://127.0.0.1:{page}/ "
              f"(owner / {DEMO_PASSWORD}). The owner's report:\n"
              f"  pendock chain report --database '{database}'\nCtrl-C stops the chain.", flush=True)
        while not stop["now"] and all(c.poll() is None for c in children):
            time.sleep(0.5)
        return 0 if stop["now"] else 1
    except KeyboardInterrupt:
        return 0
    except (RuntimeError, subprocess.CalledProcessError) as error:
        print(f"pendock: {error}", file=sys.stderr)
        return 2
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        if pg_stop:
            subprocess.run(pg_stop, capture_output=True)
        if pg_home is not None:
            shutil.rmtree(pg_home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
