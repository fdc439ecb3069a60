"""A rogue client on the clinic's LAN (run inside a dock's network namespace):
`python -m tests.support.rogue BROKER_HOST PORT USER PASSWORD_FILE REPLAY_FILE`.

It holds one dock's stolen broker login, so the broker lets it publish on that dock's
topics, and it tries everything a peer must survive: a forged event (claiming another
dock, signed by a stranger's key), an unsigned one, an oversized one, malformed bytes, a
replay of a genuine event, notes with bad signatures, and a write to another dock's
topic (which the broker's ACL must drop). Prints one JSON line of what it sent.
"""
from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timezone

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.fleet import events as ev


def main() -> int:
    host, port, user, password_file, replay_file, victim = sys.argv[1:7]
    password = open(password_file).read().strip()
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                         client_id="rogue", clean_session=True)
    client.username_pw_set(user, password)
    client.connect(host, int(port), keepalive=10)
    client.loop_start()
    own = f"pendock/events/{user}"
    stranger = Ed25519PrivateKey.generate()
    forged = ev.sign(ev.Event(victim, 999_999, "session_opened",
                              datetime.now(timezone.utc).isoformat(),
                              {"session": 666, "client_ref": "ROGUE-1", "area": "face",
                               "pen_serial": 1, "cartridge_serial": 66}, ev.GENESIS), stranger)
    unsigned = dict(forged.wire(), sig="")
    sent = {}

    def send(name: str, topic: str, payload: bytes) -> None:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
        sent[name] = sent.get(name, 0) + 1

    send("forged", own, forged.encode())
    send("unsigned", own, ev.canonical(unsigned))
    send("oversized", own, b'{"pad":"' + b"x" * 100_000 + b'"}')
    send("malformed", own, b"\x00\xffnot json at all")
    send("malformed", own, json.dumps({"v": 1, "dock": victim}).encode())
    send("replayed", own, open(replay_file, "rb").read())
    send("forged_note", f"pendock/catchup/{user}", ev.sign_note(user, {"after": {victim: 0}}, stranger))
    send("acl", f"pendock/events/{victim}", forged.encode())  # not its topic: the broker drops it
    time.sleep(0.5)
    client.loop_stop()
    client.disconnect()
    print(json.dumps(sent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
