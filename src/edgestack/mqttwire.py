"""The protocol's messages over an MQTT broker: the topic layout and the codec.

Every device has four topics under `edgestack/devices/<device id>/`:

| topic      | who publishes | QoS | payload                                      |
|------------|---------------|-----|----------------------------------------------|
| telemetry  | the device    | 1   | `TelemetryBatch` JSON, gzip-compressed        |
| events     | the device    | 1   | `EventBatch` JSON, gzip-compressed            |
| reported   | the device    | 1   | `ReportedState` JSON                         |
| desired    | the hub       | 1   | `DesiredState` JSON, retained                |

Each message carries the protocol its sender speaks in the MQTT 5 user property
`edgestack-protocol`. A broker's ACL lets a device (user name = device id) publish and
subscribe under its own topics only: `edgestack/devices/%u/...` in Mosquitto,
`edgestack/devices/${username}/...` in EMQX. Hub replicas share the uplink through the
subscription group `$share/edgestack-hub/...`.

    topic = device_topic("motor-1", "telemetry")
    uplink = decode(topic, payload, protocol="2")   # raises BadMessage
"""

import gzip
import zlib
from dataclasses import dataclass
from typing import Literal, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, TypeAdapter, ValidationError

from edgestack.protocol import (
    OLDEST_PROTOCOL,
    PROTOCOL,
    DesiredState,
    DeviceId,
    EventBatch,
    ReportedState,
    TelemetryBatch,
)

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_PAYLOAD_BYTES",
    "PROTOCOL_PROPERTY",
    "ROOT",
    "SHARE_GROUP",
    "BadMessage",
    "Kind",
    "Uplink",
    "UplinkKind",
    "acl_patterns",
    "broker_address",
    "decode",
    "decode_desired",
    "device_topic",
    "encode",
    "is_device_id",
    "shared_subscription",
]

ROOT = "edgestack/devices"
SHARE_GROUP = "edgestack-hub"
PROTOCOL_PROPERTY = "edgestack-protocol"
MAX_PAYLOAD_BYTES = 1024 * 1024
"""The most bytes one message's payload may hold, as sent."""
MAX_JSON_BYTES = 16 * 1024 * 1024
"""The most bytes a compressed payload may inflate to: a small bomb stays small."""

UplinkKind = Literal["telemetry", "events", "reported"]
Kind = Literal["telemetry", "events", "reported", "desired"]
_UPLINK: tuple[UplinkKind, ...] = get_args(UplinkKind)
_MODELS: dict[UplinkKind, type[BaseModel]] = {
    "telemetry": TelemetryBatch,
    "events": EventBatch,
    "reported": ReportedState,
}
# Batches are compressed, as over HTTP; a twin's states are small.
_COMPRESSED = frozenset({"telemetry", "events"})
_GZIP_MAGIC = b"\x1f\x8b"
_DEVICE_IDS = TypeAdapter(DeviceId)


class BadMessage(ValueError):
    """A message no reader can act on. `reason` is one of `topic`, `size`, `protocol`,
    `encoding`, `invalid`: what a bridge counts it under."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Uplink:
    """A device's message, read from the topic it came on."""

    device_id: str
    kind: UplinkKind
    message: TelemetryBatch | EventBatch | ReportedState


def broker_address(url: str) -> tuple[str, int]:
    """`(host, port)` of `mqtt://host[:port]`, port 1883 when left out; `ValueError` naming
    the form for anything else."""
    parsed = urlsplit(url)
    try:
        port = parsed.port or 1883
    except ValueError:
        port = 0
    if parsed.scheme != "mqtt" or not parsed.hostname or not port or parsed.path not in ("", "/"):
        raise ValueError(f"{url!r} is no broker address; write it as mqtt://host:port")
    return parsed.hostname, port


def is_device_id(name: str) -> bool:
    """Whether `name` could be a device's id, and so its user name on the broker."""
    try:
        _DEVICE_IDS.validate_python(name)
    except ValidationError:
        return False
    return True


def device_topic(device_id: str, kind: Kind) -> str:
    """The topic a device's messages of `kind` go on."""
    return f"{ROOT}/{device_id}/{kind}"


def shared_subscription(kind: UplinkKind) -> str:
    """The subscription, for every device, that hub replicas share the messages of."""
    return f"$share/{SHARE_GROUP}/{ROOT}/+/{kind}"


def acl_patterns() -> list[tuple[Literal["read", "write"], str]]:
    """What a device may do, as topic patterns with `{user}` where its user name goes."""
    rights: list[tuple[Literal["read", "write"], str]] = [
        ("write", f"{ROOT}/{{user}}/{kind}") for kind in _UPLINK
    ]
    return [*rights, ("read", f"{ROOT}/{{user}}/desired")]


def encode(kind: Kind, message: BaseModel) -> bytes:
    """The payload of `message` on a topic of `kind`."""
    body = message.model_dump_json(exclude_none=kind == "desired").encode()
    return gzip.compress(body, compresslevel=6) if kind in _COMPRESSED else body


def decode(topic: str, payload: bytes, protocol: str | None) -> Uplink:
    """A device's message from its topic, payload and `edgestack-protocol` property.

    Raises `BadMessage` for a topic outside the layout, a payload too big or not JSON of
    its kind, or a protocol this release does not speak."""
    device_id, kind = _parse_topic(topic)
    if kind == "desired":
        raise BadMessage("topic", f"{topic}: the hub publishes desired states, devices do not")
    _check_protocol(protocol)
    body = _inflate(payload)
    try:
        message = _MODELS[kind].model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        raise BadMessage(
            "invalid", f"{topic}: {where}: {first['msg']}; send a {kind} message as JSON"
        ) from None
    assert isinstance(message, TelemetryBatch | EventBatch | ReportedState)
    return Uplink(device_id, kind, message)


def decode_desired(payload: bytes, protocol: str | None) -> DesiredState:
    """A desired state as the hub publishes it; raises `BadMessage` when it is none."""
    _check_protocol(protocol)
    try:
        return DesiredState.model_validate_json(_inflate(payload))
    except ValidationError as exc:
        raise BadMessage("invalid", f"desired state: {exc.errors()[0]['msg']}") from None


def _parse_topic(topic: str) -> tuple[str, Kind]:
    parts = topic.split("/")
    if len(parts) != 4 or "/".join(parts[:2]) != ROOT or parts[3] not in get_args(Kind):
        raise BadMessage("topic", f"{topic[:200]!r} is no topic of {ROOT}/<device id>/<kind>")
    if not is_device_id(parts[2]):
        raise BadMessage("topic", f"{topic[:200]!r}: {parts[2][:80]!r} is no device id")
    return parts[2], parts[3]  # type: ignore[return-value]  # checked against Kind above


def _check_protocol(protocol: str | None) -> None:
    if protocol is None or not (protocol.isascii() and protocol.isdigit() and len(protocol) < 20):
        raise BadMessage(
            "protocol",
            f"the user property {PROTOCOL_PROPERTY} is {protocol!r}; state the protocol "
            f"spoken, {OLDEST_PROTOCOL} to {PROTOCOL}",
        )
    if not OLDEST_PROTOCOL <= int(protocol) <= PROTOCOL:
        raise BadMessage(
            "protocol",
            f"protocol {protocol} is not spoken here: {OLDEST_PROTOCOL} to {PROTOCOL}",
        )


def _inflate(payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise BadMessage(
            "size", f"{len(payload)} bytes, over the {MAX_PAYLOAD_BYTES} a message may hold"
        )
    if not payload.startswith(_GZIP_MAGIC):
        return payload
    inflater = zlib.decompressobj(wbits=31)
    try:
        body = inflater.decompress(payload, MAX_JSON_BYTES + 1)
    except zlib.error as exc:
        raise BadMessage("encoding", f"the payload is no gzip stream: {exc}") from None
    if len(body) > MAX_JSON_BYTES:
        raise BadMessage("size", f"the payload inflates past {MAX_JSON_BYTES} bytes")
    return body
