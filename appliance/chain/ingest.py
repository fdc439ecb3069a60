"""`pendock chain ingest`: the chain's worker, on the central side.

A paho-mqtt client on the central broker (clean session: it relies on no broker's queue)
and one worker thread. What it promises, whatever a broker, a bridge or the worker does:
- an event reaches PostgreSQL only when its signature verifies against its own clinic's
  key ring; anything else is dropped and counted (`chain report` shows the counts);
- each (dock, seq) is stored once, however often it arrives;
- a dock hears its high-water mark back (signed, `chain/<clinic>/chain/ack`) only after
  the transaction that stored it committed: a dock keeps an event until then;
- on every (re)connect, and whenever a dock is known to hold more than is stored, it asks
  that clinic's docks for what comes after its marks (`chain/<clinic>/catchup/chain`).
"""
from __future__ import annotations

import collections
import logging
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from appliance.chain import store as chain_store
from appliance.chain.registry import load_registry
from appliance.chain.topics import CENTRAL, CHAIN_ID, central_topic, parse_central
from appliance.fleet import events as ev
from appliance.fleet import keys
from appliance.fleet.settings import BrokerAddress

log = logging.getLogger("pendock.chain")

BATCH = 500  # messages per transaction, at most
INBOX = 20_000  # messages waiting for the worker (more are dropped, counted, and asked again)
CATCHUP_RETRY_S = 3.0  # a clinic whose docks hold more than is stored is asked again this often
ACK_EVERY_S = 5.0  # every clinic hears its marks at least this often (a dock restarted)


class Worker:
    def __init__(self, *, broker: BrokerAddress, database: str, keys_dir: Path, key,
                 username: str = "", password: str = "", tls_ca_file: str = ""):
        self.broker = broker
        self.keys_dir = Path(keys_dir)
        self.registry = load_registry(self.keys_dir)
        self.key = key
        self.database = database
        self.db = chain_store.connect(database)
        chain_store.create(self.db)
        self._ensure_registered()
        self.marks = chain_store.marks(self.db)
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue(INBOX)
        self.dropped: collections.Counter[tuple[str, str]] = collections.Counter()
        self.stored = 0
        self.connected = False
        self._fresh = False
        self._asked: dict[str, float] = {}
        self._want: set[str] = set()
        self._acked_at = 0.0
        self._registry_read = time.monotonic()
        self._fresh_clinics: set[str] = set()
        self._stop = threading.Event()
        self.wake = threading.Event()
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                                  client_id="pendock-chain-worker", clean_session=True,
                                  protocol=mqtt.MQTTv311)
        if password:
            self.client.username_pw_set(username, password)
        if broker.tls:
            self.client.tls_set(ca_certs=tls_ca_file or None)
        self.client.max_inflight_messages_set(200)
        self.client.reconnect_delay_set(min_delay=1, max_delay=4)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def _ensure_registered(self) -> None:
        with self.db.transaction():
            for clinic, ring in self.registry.items():
                for dock in ring:
                    self.db.execute("INSERT INTO chain_docks (dock_id, clinic) VALUES (%s, %s) "
                                    "ON CONFLICT DO NOTHING", (dock, clinic))

    # -- paho's thread ---------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("chain: the central broker refused the worker: %s", reason_code)
            return
        client.subscribe([(f"{CENTRAL}/+/events/+", 1), (f"{CENTRAL}/+/presence/+", 1),
                          (f"{CENTRAL}/+/replay/+/{CHAIN_ID}", 1)])
        self.connected = True
        self._fresh = True
        self.wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected = False

    def _on_message(self, client, userdata, message) -> None:
        try:
            self.inbox.put_nowait((message.topic, bytes(message.payload)))
        except queue.Full:
            found = parse_central(message.topic)
            self.dropped[(found[0] if found else "-", "overflow")] += 1
            if found:
                self._want.add(found[0])  # asked again once the inbox has room
        self.wake.set()

    # -- life cycle ---------------------------------------------------------------------------
    def run(self) -> None:
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=5)
        self.client.loop_start()
        try:
            while not self._stop.is_set():
                self.wake.wait(0.2)
                self.wake.clear()
                try:
                    self.step()
                except Exception as error:  # PostgreSQL restarted, a network cut: carry on
                    log.error("chain: %s; retrying in a second (nothing is acknowledged that "
                              "was not committed)", error)
                    time.sleep(1.0)
                    self._reopen()
        finally:
            self.client.disconnect()
            self.client.loop_stop()
            self.db.close()

    def _reopen(self) -> None:
        try:
            self.db.close()
            self.db = chain_store.connect(self.database)
            self.marks = chain_store.marks(self.db)
            self._want |= set(self.registry)  # what was in flight is asked for again
        except Exception as error:
            log.error("chain: the database is not reachable yet: %s", error)

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()

    def step(self) -> None:
        if self._fresh:
            self._fresh = False
            self._want |= set(self.registry)  # ask every clinic for what the store misses
            self._asked.clear()
            self._acked_at = 0.0
        while self._drain():
            pass
        if not self.connected:
            return
        now = time.monotonic()
        for clinic in sorted(self._want):
            if now - self._asked.get(clinic, 0.0) >= CATCHUP_RETRY_S:
                self._ask(clinic)
                self._fresh_clinics.discard(clinic)
        if now - self._acked_at >= ACK_EVERY_S:
            for clinic in self.registry:
                self._ack(clinic)
            self._acked_at = now

    def _drain(self) -> bool:
        """One batch from the inbox into one transaction; True when it took a full batch."""
        taken: list[tuple[str, bytes]] = []
        while len(taken) < BATCH:
            try:
                taken.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        if not taken:
            return False
        events: list[tuple[str, ev.Event]] = []
        heard: dict[str, tuple[str, int]] = {}
        for topic, raw in taken:
            try:
                try:
                    events.extend(self._read(topic, raw, heard))
                except ev.Rejected as rejected:
                    if "key r" not in str(rejected) or not self._reread_registry():
                        raise
                    events.extend(self._read(topic, raw, heard))  # a dock added since start-up
            except ev.Rejected as rejected:
                found = parse_central(topic)
                self.dropped[(found[0] if found else "-", rejected.category)] += 1
                log.info("chain: dropped a message on %s: %s", topic[:120], rejected)
        dropped, self.dropped = self.dropped, collections.Counter()
        written = chain_store.write(self.db, events, heard, dict(dropped))
        self.stored += written.new
        if written.equivocations:
            log.warning("chain: %d event(s) with a known sequence and another hash kept out",
                        written.equivocations)
        for clinic, marks in written.marks.items():
            before = self.marks.setdefault(clinic, {})
            moved = any(before.get(d, 0) != seq for d, seq in marks.items())
            before.update(marks)
            if moved:
                self._ack(clinic)  # after the commit above, never before
                # A catch-up under way: asking again now would have the docks send it all
                # a second time; ask only once it has been quiet for CATCHUP_RETRY_S.
                if clinic in self._asked:
                    self._asked[clinic] = time.monotonic()
        self._want |= written.gaps
        for clinic in set(written.marks) - written.gaps - self._fresh_clinics:
            self._want.discard(clinic)
        return len(taken) == BATCH

    def _reread_registry(self) -> bool:
        """A technician may add a dock's key without restarting the worker: look again, at
        most every few seconds (a stranger cannot make it read the disk in a loop)."""
        if time.monotonic() - self._registry_read < 5:
            return False
        self._registry_read = time.monotonic()
        try:
            fresh = load_registry(self.keys_dir)
        except keys.KeyError_ as error:
            log.warning("chain: %s", error)
            return False
        added = {(c, d) for c, ring in fresh.items() for d in ring} - {
            (c, d) for c, ring in self.registry.items() for d in ring}
        self.registry = fresh
        if added:
            self._ensure_registered()
            self._want |= {c for c, _ in added}  # what it sent before it was known was dropped
            self._fresh_clinics |= {c for c, _ in added}  # asked at once, gap seen or not
        return bool(added)

    def _read(self, topic: str, raw: bytes, heard: dict[str, tuple[str, int]]) -> list[tuple[str, ev.Event]]:
        found = parse_central(topic)
        if found is None:
            raise ev.Rejected("malformed", f"unknown topic {topic[:80]!r}")
        clinic, kind, rest = found
        ring = self.registry.get(clinic)
        if ring is None:
            raise ev.Rejected("forged", f"clinic {clinic!r} is not in the chain's key registry")
        if kind == "events" and len(rest) == 1:
            event = ev.verify(ev.decode_event(raw), ring)
            if event.dock != rest[0]:
                raise ev.Rejected("forged", f"an event of {event.dock} on {rest[0]}'s topic")
            return [(clinic, event)]
        if kind == "replay" and len(rest) == 2:
            good = []
            for value in ev.decode_batch(raw):
                try:
                    good.append((clinic, ev.verify(ev.parse_event(value), ring)))
                except ev.Rejected as rejected:
                    self.dropped[(clinic, rejected.category)] += 1
            return good
        if kind == "presence" and len(rest) == 1:
            dock, note = ev.open_note(raw, ring)
            if dock != rest[0]:
                raise ev.Rejected("forged", f"a note of {dock} on {rest[0]}'s topic")
            seq = note.get("seq")
            if isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq < ev.MAX_SEQ:
                heard[dock] = (clinic, max(seq, heard.get(dock, (clinic, 0))[1]))
            return []
        raise ev.Rejected("malformed", f"unknown topic {topic[:80]!r}")

    def _note(self, note: dict[str, Any]) -> bytes:
        return ev.sign_note(CHAIN_ID, note, self.key)

    def _ask(self, clinic: str) -> None:
        after = {d: self.marks.get(clinic, {}).get(d, 0) for d in self.registry[clinic]}
        self.client.publish(central_topic(clinic, f"catchup/{CHAIN_ID}"), self._note({"after": after}), qos=1)
        self._asked[clinic] = time.monotonic()

    def _ack(self, clinic: str) -> None:
        marks = {d: s for d, s in self.marks.get(clinic, {}).items() if d in self.registry.get(clinic, {})}
        self.client.publish(central_topic(clinic, "chain/ack"), self._note({"hw": marks}), qos=1, retain=True)


def run_worker(worker: Worker) -> int:
    """Foreground until SIGTERM or Ctrl-C (systemd stops it with SIGTERM)."""
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    try:
        worker.run()
    except KeyboardInterrupt:
        worker.stop()
    return 0
