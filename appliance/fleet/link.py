"""The dock's link to the clinic's broker: a paho-mqtt client and one worker thread.

What it promises, whatever the broker or the network does:
- this dock's events leave the durable outbox only when the broker acknowledged them
  (QoS 1 PUBACK); a crash, a broker restart or a cut cable re-sends them, never loses them;
- on every (re)connect it asks its peers for everything after the last event it holds of
  each (catch-up), instead of trusting the broker's queue (clean session, no persistence
  needed on the broker);
- every incoming byte is untrusted: oversized, malformed, unsigned, forged or replayed
  messages are dropped and counted, never merged, never a crash.

Topics (each dock writes only its own, which the broker's ACL enforces):
  pendock/events/<dock>          one signed event, QoS 1
  pendock/presence/<dock>        retained signed note: online, own sequence, high-water marks
  pendock/catchup/<dock>         signed note: "send me what comes after these sequences"
  pendock/replay/<dock>/<asker>  batches of signed events answering a catch-up
  pendock/chain/ack              the chain's worker's signed high-water marks (a clinic of a
                                 chain only: README "A chain's records in one place")
"""
from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import serialization

from appliance.fleet import events as ev
from appliance.fleet import keys
from appliance.fleet.ledger import Ledger
from appliance.fleet.settings import BrokerAddress
from appliance.fleet.shared import KICKED_AGAIN
from appliance.record.store import StoreError, Store

log = logging.getLogger("pendock.fleet")

PREFIX = "pendock"
KEEPALIVE_S = 5  # a dead link is noticed within about 1.5x this
PRESENCE_EVERY_S = 5.0
CATCHUP_RETRY_S = 3.0
WINDOW = 200  # outbox events published and not yet acknowledged, at most
BATCH = 200  # events per catch-up message (well under MAX_MESSAGE_BYTES)
SERVE_LIMIT = 50_000  # events served per catch-up request, at most
INBOX = 2000  # messages waiting for the worker, at most (more are dropped and counted)
INGEST_BATCH = 200  # peers' events per transaction: the record's write lock is held briefly
RESEND_AFTER_S = 15.0  # in flight this long with no acknowledgement at all: send again
ACK_EVERY_S = 2.0  # acknowledged events leave the outbox in one write per this period
ACK_BATCH = 1000  # ... or as soon as this many are waiting
# The chain's worker: a member of the key ring under this reserved id, never a peer.
CHAIN_ID = "chain"
CHAIN_ACK = f"{PREFIX}/chain/ack"
# The journal wakes the worker from inside the dock's own commit; the worker lets the dock
# finish (commit, latch, light) before it reads the outbox: P1 first, propagation next.
AFTER_WAKE_S = 0.02


@dataclass
class Peer:
    dock_id: str
    last_heard: str | None = None  # wall time of the last valid message from it
    online: bool | None = None  # its retained presence (None: never seen)
    seq: int = 0  # its own last sequence, as it last said


class FleetLink:
    def __init__(self, *, dock_id: str, broker: BrokerAddress, db_path: Path, key, keyring,
                 clock, keys_dir: Path | None = None, min_interval_days: int, tz: tzinfo,
                 stale_after_s: float, username: str = "",
                 password: str = "", tls_ca_file: str = "", synchronous: str = "FULL",
                 wake: threading.Event | None = None, clinic: str = ""):
        self.dock_id = dock_id
        self.broker = broker
        self.key = key
        self.keyring = dict(keyring)
        self.keys_dir = keys_dir
        self._ring_read = time.monotonic()
        self.clock = clock
        self.min_interval_days = min_interval_days
        self.tz = tz
        self.stale_after_s = stale_after_s
        # The link's own writer connection. NORMAL, not FULL: what it writes may be lost to
        # a power cut without harm (an acknowledgement lost means a duplicate sent again,
        # a peer's event lost is fetched again by catch-up), and an fsync per write would
        # hold the record's write lock against the dock's own commits (P1).
        self.store = Store(db_path, synchronous="NORMAL" if synchronous == "FULL" else synchronous)
        self.ledger = Ledger(self.store.conn, dock_id, key)
        self.wake = wake or threading.Event()
        self.inbox: queue.Queue[tuple[str, bytes]] = queue.Queue(INBOX)
        self.dropped: collections.Counter[str] = collections.Counter()
        self.duplicates = 0
        self.received = 0
        # In a chain's clinic, an event leaves the outbox only once the chain's worker has
        # stored it as well (its signed high-water mark for this dock, `chain_mark`).
        self.clinic = clinic
        self.chain_mark = 0
        self.peers: dict[str, Peer] = {d: Peer(d) for d in keyring if d not in (dock_id, CHAIN_ID)}
        self.connected = False
        self.last_error = ""
        self._last_contact = time.monotonic()
        self._drops: collections.deque[float] = collections.deque()  # monotonic, within stale_after
        self._equivocations: list[dict[str, Any]] = []  # the alarms: (dock, seq) told twice
        self._acked: collections.deque[int] = collections.deque()  # mids PUBACKed
        self._delivered: set[int] = set()  # outbox seqs acknowledged, not yet deleted
        self._inflight: dict[int, int] = {}  # mid -> outbox seq
        self._sent_upto = 0
        self._need_catchup = False
        self._catchup_sent = 0.0
        self._progress_at = 0.0
        self._presence_due = 0.0
        self._acks_due = 0.0
        self._last_ack = time.monotonic()
        self._fresh_connection = False
        self._outbox_size = self.ledger.outbox_count() - len(self._delivered)
        self._conflicts = self.ledger.conflict_count()
        self._recent_conflicts = self.ledger.conflicts(5)
        self._equivocations = self.ledger.equivocations(5)
        self._equivocation_count = self.ledger.equivocation_count()
        self._alarmed = {(a.get("dock_id"), a.get("seq")) for a in self.ledger.equivocations(1000)}
        self._own_events = self._topic("events")
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._run, name="fleet", daemon=True)
        self.client = self._client(username or dock_id, password, tls_ca_file)

    # -- life cycle ------------------------------------------------------------------------
    def _client(self, username: str, password: str, tls_ca_file: str) -> mqtt.Client:
        client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                             client_id=f"pendock-{self.dock_id}", clean_session=True,
                             protocol=mqtt.MQTTv311)
        if password:
            client.username_pw_set(username, password)
        if self.broker.tls:
            client.tls_set(ca_certs=tls_ca_file or None)
        client.max_inflight_messages_set(WINDOW)
        client.reconnect_delay_set(min_delay=1, max_delay=4)
        client.will_set(self._topic("presence"), self._note({"online": False}), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        return client

    def start(self) -> "FleetLink":
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=KEEPALIVE_S)
        self.client.loop_start()
        self._worker.start()
        return self

    def close(self) -> None:
        self._stop.set()
        self.wake.set()
        if self._worker.is_alive():
            self._worker.join(5)
        if self._deletable() and not self._worker.is_alive():
            try:
                self._write_acks()  # a clean stop sends nothing twice
            except StoreError as error:
                log.warning("fleet: acknowledgements not written (%s); they will be sent again", error)
        try:
            if self.connected:
                self.client.publish(self._topic("presence"), self._note({"online": False}),
                                    qos=1, retain=True).wait_for_publish(1)
        except (RuntimeError, ValueError, OSError):
            pass
        self.client.disconnect()
        self.client.loop_stop()
        self.store.close()

    # -- what the dock and the CLI see -------------------------------------------------------
    def stale(self) -> bool:
        """Nothing heard from the broker for longer than the clinic allows, or knocked off
        it again and again (`kicked`)."""
        if self.kicked() >= KICKED_AGAIN:
            return True
        if self.connected:
            return False
        return time.monotonic() - self._last_contact > self.stale_after_s

    def kicked(self) -> int:
        """Connections lost within the last stale_after_s (a cut cable, or another client
        taking this dock's login: the broker ends the older connection)."""
        while self._drops and time.monotonic() - self._drops[0] > self.stale_after_s:
            self._drops.popleft()
        return len(self._drops)

    def last_contact(self) -> float:
        """time.monotonic() of the last sign of the broker (CLOCK_MONOTONIC: the daemon,
        another process, compares it with its own time.monotonic())."""
        return time.monotonic() if self.connected else self._last_contact

    def summary(self) -> dict[str, Any]:
        """The contract's `status --json` `fleet` key: dock_id, peers, outbox, stale."""
        full = self.status()
        return {key: full[key] for key in ("dock_id", "peers", "outbox", "stale", "connected",
                                           "conflicts", "kicked", "equivocations")}

    def status(self) -> dict[str, Any]:
        return {
            "dock_id": self.dock_id,
            "broker": str(self.broker),
            "connected": self.connected,
            "stale": self.stale(),
            "outbox": self._outbox_size,
            "peers": [{"dock_id": p.dock_id, "last_heard": p.last_heard, "online": p.online,
                       "seq": p.seq} for p in sorted(self.peers.values(), key=lambda p: p.dock_id)],
            "conflicts": self._conflicts,
            "recent_conflicts": self._recent_conflicts,
            "kicked": self.kicked(),
            "equivocations": self._equivocation_count,
            "recent_equivocations": self._equivocations,
            "dropped": {c: self.dropped.get(c, 0) for c in ev.DROP_CATEGORIES},
            "duplicates": self.duplicates,
            "received": self.received,
            "last_error": self.last_error or None,
            **({"chain": {"clinic": self.clinic, "acknowledged": self.chain_mark}} if self.clinic else {}),
        }

    # -- paho's thread: only notes what happened, the worker acts ----------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.last_error = f"the broker refused this dock: {reason_code}"
            log.warning("%s", self.last_error)
            return
        self.last_error = ""
        client.subscribe([(f"{PREFIX}/events/+", 1), (f"{PREFIX}/presence/+", 1),
                          (f"{PREFIX}/catchup/+", 1), (f"{PREFIX}/replay/+/{self.dock_id}", 1)]
                         + ([(CHAIN_ACK, 1)] if self.clinic else []))
        self._fresh_connection = True  # the worker re-sends the whole outbox and catches up
        self.connected = True
        self._last_contact = time.monotonic()
        self.wake.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected:
            self._last_contact = time.monotonic()
            if not self._stop.is_set():
                self._drops.append(time.monotonic())
                if self.kicked() >= KICKED_AGAIN:
                    self.last_error = (
                        f"disconnected from the broker {self.kicked()} times in the last "
                        f"{self.stale_after_s / 60:g} minutes: another client may be using this dock's "
                        f"login ({self.dock_id}); give it a new broker password "
                        f"(pendock fleet provision) and look for the device")
                    log.warning("fleet: %s", self.last_error)
        self.connected = False
        self.wake.set()

    def _on_message(self, client, userdata, message) -> None:
        self._last_contact = time.monotonic()
        if message.topic == CHAIN_ACK and not self.clinic:
            return
        if message.topic == self._own_events:
            # This dock's own events, echoed by the broker (MQTT 3.1.1 has no "no local"):
            # nothing to learn, and verifying and ingesting them would take the record's
            # write lock from the dock's own decisions for nothing.
            return
        if len(message.payload) > ev.MAX_MESSAGE_BYTES:
            self.dropped["oversized"] += 1
            return
        try:
            self.inbox.put_nowait((message.topic, bytes(message.payload)))
        except queue.Full:
            self.dropped["overflow"] += 1
        self.wake.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._acked.append(mid)
        self.wake.set()

    # -- the worker ----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            if self.wake.wait(0.1):
                time.sleep(AFTER_WAKE_S)
            self.wake.clear()
            try:
                self._step()
            except StoreError as error:
                log.error("fleet: the record cannot be written (%s); retrying", error)
                time.sleep(0.5)
            except Exception:  # never let the link die: the dock keeps working alone
                log.exception("fleet: unexpected error; carrying on")
                time.sleep(0.5)

    def _step(self) -> None:
        if self._fresh_connection:
            self._fresh_connection = False
            self._inflight.clear()
            self._sent_upto = 0
            self._need_catchup = True
            self._catchup_sent = 0.0
            self._presence_due = 0.0
        if self.connected:
            self._last_contact = time.monotonic()
        self._handle_inbox()
        self._handle_acks()
        if self.connected:
            self._publish_outbox()
            now = time.monotonic()
            quiet = now - max(self._catchup_sent, self._progress_at)
            if self._need_catchup and quiet > CATCHUP_RETRY_S:
                self._ask_catchup()
            if now >= self._presence_due:
                self._publish_presence()
        self._outbox_size = self.ledger.outbox_count() - len(self._deletable())

    def _deletable(self) -> set[int]:
        """Acknowledged events that may leave the outbox: by the clinic's broker and, in a
        chain, by the chain's worker too."""
        if not self.clinic:
            return self._delivered
        return {seq for seq in self._delivered if seq <= self.chain_mark}

    def _handle_acks(self) -> None:
        """Acknowledged events leave the window at once, and the outbox in one write every
        ACK_EVERY_S: each write takes the record's write lock, which the dock's decisions
        need (P1). One not yet written is only sent again after a crash (a duplicate,
        which peers ignore); `outbox` does not count it."""
        while self._acked:
            seq = self._inflight.pop(self._acked.popleft(), None)
            if seq is not None:
                self._delivered.add(seq)
                self._last_ack = time.monotonic()
        ready = self._deletable()
        if ready and (time.monotonic() >= self._acks_due or len(ready) >= ACK_BATCH):
            self._write_acks()

    def _write_acks(self) -> None:
        self._acks_due = time.monotonic() + ACK_EVERY_S
        ready = self._deletable()
        with self.store.transaction("the broker's acknowledgements"):
            self.ledger.acknowledged(sorted(ready))
        self._delivered -= ready

    def _publish_outbox(self) -> None:
        if self._inflight and time.monotonic() - self._last_ack > RESEND_AFTER_S:
            # Published, never acknowledged, and nothing acknowledged for a while (a message
            # lost between paho and the broker): send the outbox again from its start.
            self._inflight.clear()
            self._sent_upto = 0
            self._last_ack = time.monotonic()
        room = WINDOW - len(self._inflight)
        if room <= 0:
            return
        for seq, body in self.ledger.outbox(after=self._sent_upto, limit=room):
            if seq in self._delivered:  # acknowledged already, its deletion not yet written
                self._sent_upto = seq
                continue
            info = self.client.publish(self._topic("events"), body, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return  # not connected after all: try again on the next connect
            if not self._inflight:
                self._last_ack = time.monotonic()  # the clock for RESEND_AFTER_S starts now
            self._inflight[info.mid] = seq
            self._sent_upto = seq

    def _publish_presence(self) -> None:
        note = {"online": True, "seq": self.ledger.own_seq(), "hw": self.ledger.high_water(),
                "at": self.clock.now().isoformat(),
                # The equivocations this dock saw: every dock raises the alarm, the lying
                # dock's own included (it never reads its own topic).
                "alarms": [[a.get("dock_id"), a.get("seq")] for a in self._equivocations]}
        self.client.publish(self._topic("presence"), self._note(note), qos=1, retain=True)
        self._presence_due = time.monotonic() + PRESENCE_EVERY_S

    def _ask_catchup(self) -> None:
        marks = self.ledger.high_water()
        after = {d: marks.get(d, 0) for d in self.keyring if d != self.dock_id}
        self.client.publish(self._topic("catchup"), self._note({"after": after}), qos=1)
        self._catchup_sent = time.monotonic()
        self._need_catchup = False

    def _handle_inbox(self) -> None:
        batch: list[ev.Event] = []
        while True:
            try:
                topic, raw = self.inbox.get_nowait()
            except queue.Empty:
                break
            try:
                try:
                    batch.extend(self._read(topic, raw))
                except ev.Rejected as rejected:
                    if not _ring_may_be_behind(rejected) or not self._reread_keyring():
                        raise
                    batch.extend(self._read(topic, raw))  # a dock added or re-keyed since start-up
            except ev.Rejected as rejected:
                self.dropped[rejected.category] += 1
                log.info("fleet: dropped a message on %s: %s", topic, rejected)
                if "bad signature" in str(rejected):
                    self._say_stale_key(topic)
            if len(batch) >= INGEST_BATCH:
                self._ingest(batch)
                batch = []
        if batch:
            self._ingest(batch)

    def _read(self, topic: str, raw: bytes) -> list[ev.Event]:
        """The verified events a message carries (notes are acted on here, return none)."""
        parts = topic.split("/")
        if len(parts) < 3 or parts[0] != PREFIX:
            raise ev.Rejected("malformed", f"unknown topic {topic[:80]!r}")
        kind, sender = parts[1], parts[2]
        if kind == "events":
            event = ev.verify(ev.decode_event(raw), self.keyring)
            self._heard(event.dock)
            return [event]
        if kind == "replay":
            good = []
            for value in ev.decode_batch(raw):
                try:
                    good.append(ev.verify(ev.parse_event(value), self.keyring))
                except ev.Rejected as rejected:
                    self.dropped[rejected.category] += 1
            self._heard(sender)
            return good
        if kind == "chain" and topic == CHAIN_ACK and self.clinic:
            dock, note = ev.open_note(raw, self.keyring)
            if dock != CHAIN_ID:
                raise ev.Rejected("forged", f"a chain acknowledgement signed by {dock}")
            mark = ev.seq_map(note.get("hw", {})).get(self.dock_id, 0)
            self.chain_mark = max(self.chain_mark, min(mark, self.ledger.own_seq()))
            return []
        if kind in ("presence", "catchup"):
            dock, note = ev.open_note(raw, self.keyring)
            if dock != sender:
                raise ev.Rejected("forged", f"a note of {dock} on {sender}'s topic")
            if dock == self.dock_id:
                return []
            self._heard(dock)
            if kind == "presence":
                self._presence(dock, note)
            else:
                self._serve(dock, ev.seq_map(note.get("after", {})))
            return []
        raise ev.Rejected("malformed", f"unknown topic {topic[:80]!r}")

    def _say_stale_key(self, topic: str) -> None:
        """A peer's events that its key in the ring does not verify: never silent (a demo
        dock started again with a new data folder has a new key; so would a forger)."""
        parts = topic.split("/")
        dock = parts[2] if len(parts) >= 3 else "?"
        where = f"{self.keys_dir}/{dock}.pub" if self.keys_dir else f"the key ring's {dock}.pub"
        error = (f"messages signed as {dock} do not verify with {where}: that file is stale ({dock} "
                 f"runs with another key now, e.g. a demo started again with a new data folder) "
                 f"or someone forges {dock}. Copy {dock}'s current public key there (pendock fleet "
                 f"provision), then restart this dock")
        if error != self.last_error:
            self.last_error = error
            log.error("fleet: %s", error)

    def _reread_keyring(self) -> bool:
        """A technician may add (or renew) a dock's key without restarting this one: look
        again, at most every few seconds (a stranger cannot make the dock read the disk in a
        loop). True when a key was added or changed."""
        if self.keys_dir is None or time.monotonic() - self._ring_read < 5:
            return False
        self._ring_read = time.monotonic()
        try:
            fresh = keys.load_keyring(self.keys_dir)
        except keys.KeyError_ as error:
            log.warning("fleet: %s", error)
            return False
        added = set(fresh) - set(self.keyring)
        changed = {d for d in set(fresh) & set(self.keyring) if _raw(fresh[d]) != _raw(self.keyring[d])}
        self.keyring = fresh
        for dock in added - {self.dock_id}:
            self.peers.setdefault(dock, Peer(dock))
        if added or changed:
            self._need_catchup = True  # what it sent before it was known was dropped
        self.peers.pop(CHAIN_ID, None)
        return bool(added or changed)

    def _heard(self, dock: str) -> None:
        peer = self.peers.get(dock)
        if peer is not None:
            peer.last_heard = self.clock.now().isoformat()

    def _presence(self, dock: str, note: dict[str, Any]) -> None:
        peer = self.peers[dock]
        peer.online = bool(note.get("online"))
        self._told_alarms(dock, note.get("alarms"))
        seq = note.get("seq")
        if isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq < ev.MAX_SEQ:
            peer.seq = max(peer.seq, seq)
            if seq > self.ledger.high_water().get(dock, 0):
                self._need_catchup = True  # it has events this dock has not
        hw = note.get("hw")
        if isinstance(hw, dict):
            try:
                theirs = ev.seq_map(hw)
            except ev.Rejected:
                return
            mine = self.ledger.high_water()
            if any(seq > mine.get(d, 0) for d, seq in theirs.items() if d != self.dock_id):
                self._need_catchup = True
            if theirs.get(self.dock_id, 0) > mine[self.dock_id]:
                # A peer holds more of this dock's events than this dock does: its record was
                # replaced by an older copy. Its next events would reuse sequence numbers
                # that peers already hold, and they would refuse them (equivocation).
                self.last_error = (
                    f"{dock} holds this dock's events up to {theirs[self.dock_id]}, but this "
                    f"record ends at {mine[self.dock_id]} (restored from an older backup?): "
                    f"its new events will be refused by the clinic; give this dock a new "
                    f"dock_id (pendock fleet provision --dock NEW-ID) and restart it")
                log.error("fleet: %s", self.last_error)

    def _told_alarms(self, teller: str, alarms: Any) -> None:
        """Equivocations a peer saw, raised here too (each once)."""
        if not isinstance(alarms, list):
            return
        now = self.clock.now()
        for item in alarms[:5]:
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
                    and ev.DOCK_ID.fullmatch(item[0]) and isinstance(item[1], int)
                    and not isinstance(item[1], bool) and 0 < item[1] < ev.MAX_SEQ):
                continue
            key = (item[0], item[1])
            if key in self._alarmed:
                continue
            self._alarmed.add(key)
            alarm = {"dock_id": item[0], "seq": item[1], "why": f"seen by {teller}"}
            self.store.audit("fleet", "fleet_equivocation", alarm, now, self.clock.synced())
            self._equivocations = (self._equivocations + [alarm])[-5:]
            self._equivocation_count += 1
            log.error("fleet: ALARM: %s saw %s's key tell two stories at %d", teller, item[0], item[1])

    def _serve(self, asker: str, after: dict[str, int]) -> None:
        """Answer a peer's catch-up: this dock's own events always; another dock's only
        while that dock is offline (it answers for itself when it is online)."""
        served = 0
        for origin, seq in sorted(after.items()):
            if origin == asker:
                continue
            if origin != self.dock_id:
                peer = self.peers.get(origin)
                if peer is None or peer.online:
                    continue
            while served < SERVE_LIMIT:
                rows = self.ledger.events_after(origin, seq, BATCH)
                if not rows:
                    break
                message = b'{"events":[' + b",".join(body for _, body in rows) + b"]}"
                self.client.publish(f"{PREFIX}/replay/{self.dock_id}/{asker}", message, qos=1)
                served += len(rows)
                seq = rows[-1][0]
                if len(rows) < BATCH:
                    break

    def _ingest(self, batch: list[ev.Event]) -> None:
        now = self.clock.now()
        with self.store.transaction("the peers' events"):
            result = self.ledger.ingest(batch, min_interval_days=self.min_interval_days,
                                        tz=self.tz, now=now)
            for conflict in result.conflicts:
                self.store.audit("fleet", "fleet_conflict", conflict, now, self.clock.synced())
            for alarm in result.equivocated:
                key = (alarm["dock_id"], alarm["seq"])
                if key not in self._alarmed:  # once per place in a dock's chain
                    self._alarmed.add(key)
                    self.store.audit("fleet", "fleet_equivocation", alarm, now, self.clock.synced())
                    self._equivocations = (self._equivocations + [alarm])[-5:]
                    self._equivocation_count += 1
            for act in result.not_applied:
                self.store.audit("fleet", "fleet_act_not_applied", act, now, self.clock.synced())
        self.received += result.new
        if result.new:
            self._progress_at = time.monotonic()  # a catch-up under way: do not ask again yet
        self.duplicates += result.duplicates
        self.dropped["equivocation"] += result.equivocations
        if result.equivocated:
            log.error("fleet: ALARM: a dock's key told two stories (its key may be stolen): %s",
                      result.equivocated)
        if result.conflicts:
            self._conflicts = self.ledger.conflict_count()
            self._recent_conflicts = self.ledger.conflicts(5)
            log.warning("fleet: %d conflict(s) found while merging: %s", len(result.conflicts),
                        result.conflicts)
        # A gap (an event arrived whose predecessors did not): ask for the rest.
        marks = self.ledger.high_water()
        if any(self.ledger.held_max(d) > marks.get(d, 0) for d in {e.dock for e in batch}):
            self._need_catchup = True

    # -- helpers --------------------------------------------------------------------------------
    def _topic(self, kind: str) -> str:
        return f"{PREFIX}/{kind}/{self.dock_id}"

    def _note(self, note: dict[str, Any]) -> bytes:
        return ev.sign_note(self.dock_id, note, self.key)


def _ring_may_be_behind(rejected: ev.Rejected) -> bool:
    """An unknown dock or a bad signature: the key ring on disk may be newer than ours."""
    text = str(rejected)
    return "key ring" in text or "bad signature" in text


def _raw(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
