"""The `[fleet]` table's broker address: the one rule for it (pure). The config checks it
when it is loaded (appliance/core/config.py, with file and line); the fleet's link parses
the address it was given by the same rule."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker(url: str) -> BrokerAddress:
    """mqtt://HOST[:PORT] (1883) or mqtts://HOST[:PORT] (8883, TLS); ValueError says why."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"broker {url!r} must look like mqtt://HOST:PORT or mqtts://HOST:PORT")
    if parts.path not in ("", "/") or parts.query or parts.username:
        raise ValueError(f"broker {url!r}: give only scheme, host and port (credentials go "
                         f"in username and password_file)")
    try:
        port = parts.port
        if port == 0:
            raise ValueError("port 0")  # urlsplit takes it; no broker listens there
    except ValueError:
        raise ValueError(f"broker {url!r}: the port must be a number from 1 to 65535") from None
    tls = parts.scheme == "mqtts"
    return BrokerAddress(parts.hostname, port or (8883 if tls else 1883), tls)
