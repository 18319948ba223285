"""The transports `--transport` names: `http`, or `mqtt://host:port` for a broker."""

from collections.abc import Callable
from urllib.parse import urlsplit

from edgestack.fleetsim._mqtt import MqttTransport
from edgestack.fleetsim._transport import HttpTransport, Transport
from edgestack.mqttwire import broker_address

__all__ = ["TRANSPORTS", "transport_scheme"]

TRANSPORTS: dict[str, Callable[[str, str, int], Transport]] = {
    "http": lambda hub_url, _transport, connections: HttpTransport(hub_url, connections),
    "mqtt": MqttTransport,
}
"""Transports by the scheme of what `--transport` gives, each made from the hub's address,
what `--transport` gives and the HTTP connections one process may hold."""


def transport_scheme(transport: str) -> str:
    """The name in `TRANSPORTS` of `transport`; `ValueError` naming the forms for others."""
    scheme = urlsplit(transport).scheme or transport
    try:
        if scheme == "mqtt":
            broker_address(transport)
        elif transport != "http" or scheme not in TRANSPORTS:
            raise ValueError(transport)
    except ValueError:
        raise ValueError(
            f"transport {transport!r}: write http, or mqtt://host:port for a broker"
        ) from None
    return scheme
