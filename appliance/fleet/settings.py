"""The broker address's rule, where the fleet has always imported it from: it lives in
appliance/core/broker.py, so the config applies it once, at load."""
from __future__ import annotations

from appliance.core.broker import BrokerAddress, parse_broker

__all__ = ["BrokerAddress", "parse_broker"]
