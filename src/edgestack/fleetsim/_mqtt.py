"""Simulated devices through an MQTT broker, as `agent/mqttlink.py` reaches it: enrolment and
bundles over HTTP, the twin and telemetry on the device's own topics with its own account.

Every device holds a paho client of its own (the broker knows a device by its connection),
and all of a process's clients are driven from its event loop through paho's socket
callbacks: `loop_start` would cost a thread per device, and a few thousand threads in one
process spend the CPU on the GIL rather than on the broker.
"""

import asyncio
import contextlib
import gzip
import json
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edgestack.agent.link import HubRejected, HubUnavailable
from edgestack.fleetsim._transport import HttpTransport
from edgestack.mqttwire import (
    PROTOCOL_PROPERTY,
    BadMessage,
    broker_address,
    decode_desired,
    device_topic,
    encode,
)
from edgestack.protocol import (
    PROTOCOL,
    DesiredState,
    EnrolRequest,
    EnrolResponse,
    IngestAck,
    ReportedState,
)

__all__ = ["MqttTransport"]

# How long a device waits for the broker: to take its account, to acknowledge a message.
_CONNECT_S = 30.0
_ACK_S = 30.0
# paho's keep-alive and retries run in `loop_misc`, called this often for every client.
_MISC_EVERY_S = 1.0
_KEEPALIVE_S = 60
_KINDS = {"telemetry": "telemetry", "events": "events"}


class _Device:
    """One device's broker connection, read and written from the event loop."""

    def __init__(self, device_id: str, token: str, address: tuple[str, int]) -> None:
        self.token = token
        # Settled by the broker's answer; None until the first connect.
        self._connection: asyncio.Future[None] | None = None
        self.desired: DesiredState | None = None
        self.desired_changed = asyncio.Event()
        self._device_id = device_id
        self._address = address
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._loop = asyncio.get_running_loop()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=device_id, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(device_id, token)
        self.client.on_socket_open = self._on_socket_open
        self.client.on_socket_close = self._on_socket_close
        self.client.on_socket_register_write = self._on_register_write
        self.client.on_socket_unregister_write = self._on_unregister_write
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message

    async def connect(self) -> None:
        """Connect, or raise `HubUnavailable` when the broker is out of reach or refuses the
        account (the hub may not have had it reread its accounts yet)."""
        connection = self._connection
        if connection is None or (connection.done() and connection.exception() is not None):
            connection = self._connection = self._loop.create_future()
            try:
                # A loopback connect to a broker that listens takes microseconds; one that
                # does not answers at once with a refusal, so the loop is not held.
                self.client.connect(*self._address, keepalive=_KEEPALIVE_S, clean_start=True)
            except OSError as exc:
                self._down(HubUnavailable(f"broker {self._address}: {exc!r}"))
                raise HubUnavailable(f"broker {self._address}: {exc!r}") from exc
        try:
            # Shielded: calls waiting on the same connect each time out on their own.
            await asyncio.wait_for(asyncio.shield(connection), _CONNECT_S)
        except TimeoutError:
            self.client.disconnect()
            raise HubUnavailable(f"broker {self._address}: no answer to connect") from None

    async def publish(self, kind: str, payload: bytes) -> None:
        await self.connect()
        properties = Properties(PacketTypes.PUBLISH)
        properties.UserProperty = (PROTOCOL_PROPERTY, str(PROTOCOL))
        topic = device_topic(self._device_id, kind)  # type: ignore[arg-type]  # an uplink kind
        acked = self._loop.create_future()
        info = self.client.publish(topic, payload, qos=1, properties=properties)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise HubUnavailable(f"publish {topic}: {mqtt.error_string(info.rc)}")
        self._acks[info.mid] = acked
        try:
            await asyncio.wait_for(acked, _ACK_S)
        except TimeoutError:
            raise HubUnavailable(f"publish {topic}: the broker did not acknowledge it") from None
        finally:
            self._acks.pop(info.mid, None)

    def close(self) -> None:
        self.client.disconnect()
        self._down(HubUnavailable("the device stopped"))

    def misc(self) -> None:
        self.client.loop_misc()

    def _down(self, why: Exception) -> None:
        """The connection is gone: the next call connects again."""
        connection = self._connection
        if connection is not None and connection.done():
            connection = self._connection = self._loop.create_future()
        if connection is not None:
            connection.set_exception(why)
            # Read at once, so that a failure nobody awaits any more logs no warning.
            connection.exception()
        for acked in self._acks.values():
            if not acked.done():
                acked.set_exception(why)

    # -- paho's callbacks, all on the event loop ------------------------------

    def _on_socket_open(self, client: mqtt.Client, _userdata: object, sock: Any) -> None:
        self._loop.add_reader(sock, client.loop_read)

    def _on_socket_close(self, _client: mqtt.Client, _userdata: object, sock: Any) -> None:
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)

    def _on_register_write(self, client: mqtt.Client, _userdata: object, sock: Any) -> None:
        self._loop.add_writer(sock, client.loop_write)

    def _on_unregister_write(self, _client: mqtt.Client, _userdata: object, sock: Any) -> None:
        self._loop.remove_writer(sock)

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._down(HubUnavailable(f"the broker refused {self._device_id}: {reason}"))
            return
        client.subscribe(device_topic(self._device_id, "desired"), qos=1)
        if self._connection is not None and not self._connection.done():
            self._connection.set_result(None)

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._down(HubUnavailable(f"the broker connection was lost: {reason}"))

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: object,
        mid: int,
        reason: ReasonCode,
        _properties: Properties,
    ) -> None:
        acked = self._acks.get(mid)
        if acked is None or acked.done():
            return
        if reason.is_failure:
            acked.set_exception(HubRejected(403, f"the broker refused the message: {reason}"))
        else:
            acked.set_result(None)

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        stated = dict(getattr(msg.properties, "UserProperty", None) or [])
        with contextlib.suppress(BadMessage):
            self.desired = decode_desired(bytes(msg.payload), stated.get(PROTOCOL_PROPERTY))
            self.desired_changed.set()
            self.desired_changed = asyncio.Event()


class MqttTransport:
    """`Transport` through the broker of `broker_url` (`mqtt://host:port`); enrolment and
    bundle downloads go to the hub at `hub_url` over `connections` HTTP sockets.

    A batch counts as acked when the broker acknowledged it (QoS 1), as an agent over MQTT
    sees it: the hub's answer does not come back over MQTT."""

    def __init__(self, hub_url: str, broker_url: str, connections: int = 64) -> None:
        self._http = HttpTransport(hub_url, connections)
        self._address = broker_address(broker_url)
        self._devices: dict[str, _Device] = {}
        self._misc: asyncio.Task[None] | None = None

    async def aclose(self) -> None:
        if self._misc is not None:
            self._misc.cancel()
            await asyncio.gather(self._misc, return_exceptions=True)
        for device in self._devices.values():
            device.close()
        self._devices.clear()
        await self._http.aclose()

    async def enrol(self, request: EnrolRequest) -> EnrolResponse:
        return await self._http.enrol(request)

    async def download(self, token: str, digest: str) -> int:
        return await self._http.download(token, digest)

    async def desired(
        self, device_id: str, token: str, *, after: int | None, wait_s: float
    ) -> DesiredState:
        """The retained desired state: at once when it differs from version `after`, else
        the next one within `wait_s` seconds; the first one is waited for when none came."""
        device = await self._connected(device_id, token)
        state = device.desired
        if state is not None and state.version != after:
            return state
        wait = wait_s if state is not None else max(wait_s, _CONNECT_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(device.desired_changed.wait(), wait)
        if device.desired is None:
            raise HubUnavailable(f"{device_id}: no desired state came from the broker")
        return device.desired

    async def report(self, device_id: str, token: str, state: ReportedState) -> None:
        device = await self._connected(device_id, token)
        await device.publish("reported", encode("reported", state))

    async def ingest(self, device_id: str, token: str, kind: str, gzipped: bytes) -> IngestAck:
        if kind not in _KINDS:
            raise ValueError(f"kind {kind!r}: over MQTT only {', '.join(_KINDS)} are published")
        device = await self._connected(device_id, token)
        await device.publish(_KINDS[kind], gzipped)
        batch_id = uuid.UUID(json.loads(gzip.decompress(gzipped))["batch_id"])
        return IngestAck(batch_id=batch_id, accepted=1, duplicate=False)

    async def _connected(self, device_id: str, token: str) -> _Device:
        """The device's connection with `token`; one with an older token is closed first."""
        if self._misc is None:
            self._misc = asyncio.create_task(self._keep_alive())
        device = self._devices.get(device_id)
        if device is not None and device.token != token:
            device.close()
            device = None
        if device is None:
            device = self._devices[device_id] = _Device(device_id, token, self._address)
        await device.connect()
        return device

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(_MISC_EVERY_S)
            for device in list(self._devices.values()):
                with contextlib.suppress(OSError):
                    device.misc()
