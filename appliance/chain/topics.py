"""The chain's topic names, on the central broker and inside each clinic (pure).

Inside a clinic the chain's worker is one more member of the key ring, under the reserved
id `chain`: its catch-up requests and acknowledgements are signed notes the docks check
like any peer's. Each clinic's bridge maps its local `pendock/...` topics to
`chain/<clinic>/...` on the central broker, so the clinic of every message is in its topic
and a dock never receives another clinic's events.

  clinic (local)                 central
  pendock/events/<dock>     ->   chain/<clinic>/events/<dock>
  pendock/presence/<dock>   ->   chain/<clinic>/presence/<dock>
  pendock/replay/<dock>/chain -> chain/<clinic>/replay/<dock>/chain
  pendock/catchup/chain     <-   chain/<clinic>/catchup/chain   (the worker asks)
  pendock/chain/ack         <-   chain/<clinic>/chain/ack       (the worker's high-water marks)
"""
from __future__ import annotations

import re

CHAIN_ID = "chain"  # the worker's id in every clinic's key ring (no dock may be called so)
CENTRAL = "chain"  # the central broker's topic root
CLINIC_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
LOCAL_ACK = "pendock/chain/ack"

# The bridge's topic lines: (pattern, direction), local prefix pendock/, remote chain/<clinic>/.
BRIDGED = (("events/+", "out"), ("presence/+", "out"), (f"replay/+/{CHAIN_ID}", "out"),
           (f"catchup/{CHAIN_ID}", "in"), ("chain/ack", "in"))


def central_topic(clinic: str, local: str) -> str:
    """chain/<clinic>/<local> for a local topic's tail (e.g. "catchup/chain")."""
    return f"{CENTRAL}/{clinic}/{local}"


def parse_central(topic: str) -> tuple[str, str, list[str]] | None:
    """(clinic, kind, rest) of a central topic, None when it is not one of the chain's."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != CENTRAL or not CLINIC_ID.fullmatch(parts[1]):
        return None
    return parts[1], parts[2], parts[3:]
