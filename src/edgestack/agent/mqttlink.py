"""The agent's side of the wire through an MQTT broker: the twin and the uplink over MQTT,
enrolment, bundles and inference over HTTP, behind the calls `HubLink` has.

paho's network thread talks to the broker; what it hears comes to the event loop with
`call_soon_threadsafe`, so the loop never waits on the network. The broker's user name is
the device id and its password the device token, which the hub hashes into the broker's
accounts as it issues it.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edgestack.agent.link import Artifact, HubLink, HubRejected, HubUnavailable
from edgestack.mqttwire import (
    PROTOCOL_PROPERTY,
    BadMessage,
    broker_address,
    decode_desired,
    device_topic,
    encode,
)
from edgestack.protocol import PROTOCOL, DesiredState, EnrolRequest, EnrolResponse, ReportedState

__all__ = ["MqttLink"]

log = logging.getLogger("edgestack.agent.mqtt")

_OVER_MQTT = frozenset({"telemetry", "events"})
_RECONNECT_MIN_S = 1
_RECONNECT_MAX_S = 5
# MQTT's fixed header, the topic's length and the packet id, beside topic and payload.
_PUBLISH_OVERHEAD = 8
# MQTT 5's CONNACK reasons for an account the broker does not take: bad user name or
# password, not authorized.
_ACCOUNT_REFUSED = frozenset({134, 135})


class MqttLink:
    """`HubLink`'s calls: `report` and the `telemetry` and `events` batches of `ingest` are
    published with QoS 1 and return once the broker acknowledged them; `desired` answers
    from the device's retained desired-state topic. The broker connection opens once
    `token` is set, and opens again with each new token.

    A broker out of reach raises `HubUnavailable`, so the call is tried again later. So does
    one refusing the device's account while the hub takes its token (the hub may not have had
    the broker reread its accounts yet); a token the hub refuses too raises the hub's
    refusal, as `HubLink` would, so the agent enrols again rather than wait for ever."""

    def __init__(
        self, hub_url: str, broker_url: str, device_id: str, *, ack_timeout_s: float = 10.0
    ) -> None:
        self._http = HubLink(hub_url)
        self._address = broker_address(broker_url)
        self._device_id = device_id
        self._ack_timeout_s = ack_timeout_s
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = False
        self._refused: ReasonCode | None = None
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._early: dict[int, ReasonCode] = {}
        self._desired: DesiredState | None = None
        self._desired_changed = asyncio.Event()
        self._sent = 0

    @property
    def token(self) -> str:
        return self._http.token

    @token.setter
    def token(self, token: str) -> None:
        if token == self._http.token and self._client is not None:
            return
        self._http.token = token
        self._loop = asyncio.get_running_loop()
        self._retire()
        if token:
            self._client = self._open(token)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)
        await self._http.aclose()

    def take_sent_bytes(self) -> int:
        """Bytes sent since the last call, to the broker and to the hub."""
        sent, self._sent = self._sent, 0
        return sent + self._http.take_sent_bytes()

    async def enrol(self, request: EnrolRequest) -> EnrolResponse:
        return await self._http.enrol(request)

    async def desired(self, device_id: str, *, after: int, wait_s: float) -> DesiredState:
        state = self._desired
        if state is not None and state.version != after:
            return state
        changed = self._desired_changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), wait_s)
        if self._desired is None:
            await self._ask_hub_of_a_refused_token()
            raise HubUnavailable(self._why_not("no desired state arrived from the broker yet"))
        return self._desired

    async def report(self, device_id: str, state: ReportedState) -> None:
        await self._publish(device_topic(device_id, "reported"), encode("reported", state))

    async def ingest(self, device_id: str, kind: str, gzipped_json: bytes) -> None:
        """Publish a telemetry or events batch; other kinds (samples, windows) go over HTTP.
        The hub's answer is not seen over MQTT: the broker's acknowledgement is the answer."""
        if kind not in _OVER_MQTT:
            await self._http.ingest(device_id, kind, gzipped_json)
            return
        topic = device_topic(device_id, "telemetry" if kind == "telemetry" else "events")
        await self._publish(topic, gzipped_json)

    async def infer(self, body: bytes) -> bytes:
        return await self._http.infer(body)

    @contextlib.asynccontextmanager
    async def artifact(self, digest: str, *, offset: int = 0) -> AsyncIterator[Artifact]:
        async with self._http.artifact(digest, offset=offset) as artifact:
            yield artifact

    # -- the event loop ------------------------------------------------------

    async def _publish(self, topic: str, payload: bytes) -> None:
        client = self._client
        if client is None or not self._connected:
            await self._ask_hub_of_a_refused_token()
            raise HubUnavailable(self._why_not(f"publish {topic}: not connected to the broker"))
        properties = Properties(PacketTypes.PUBLISH)
        properties.UserProperty = (PROTOCOL_PROPERTY, str(PROTOCOL))
        info = client.publish(topic, payload, qos=1, properties=properties)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise HubUnavailable(f"publish {topic}: {mqtt.error_string(info.rc)}")
        self._sent += len(topic) + len(payload) + _PUBLISH_OVERHEAD
        acked = asyncio.get_running_loop().create_future()
        self._acks[info.mid] = acked
        if (early := self._early.pop(info.mid, None)) is not None:
            self._settle(info.mid, early)
        try:
            await asyncio.wait_for(acked, self._ack_timeout_s)
        except TimeoutError:
            raise HubUnavailable(f"publish {topic}: the broker did not acknowledge it") from None
        finally:
            self._acks.pop(info.mid, None)

    def _settle(self, mid: int, reason: ReasonCode) -> None:
        acked = self._acks.get(mid)
        if acked is None:
            self._early[mid] = reason
            return
        if acked.done():
            return
        if reason.is_failure:
            acked.set_exception(HubRejected(403, f"the broker refused the message: {reason}"))
        else:
            acked.set_result(None)

    async def _ask_hub_of_a_refused_token(self) -> None:
        """Raise the hub's refusal (`HubRejected`, 401) of the token the broker refused: the
        hub, not the broker, says whether a token is still the device's."""
        if self._refused is not None and self._refused.value in _ACCOUNT_REFUSED:
            await self._http.desired(self._device_id, after=0, wait_s=0)

    def _up(self, refused: ReasonCode | None) -> None:
        self._connected = refused is None
        self._refused = refused

    def _down(self) -> None:
        self._connected = False
        self._early.clear()
        for acked in self._acks.values():
            if not acked.done():
                acked.set_exception(HubUnavailable("the broker connection was lost"))

    def _new_desired(self, state: DesiredState) -> None:
        self._desired = state
        self._desired_changed.set()
        self._desired_changed = asyncio.Event()

    def _why_not(self, what: str) -> str:
        refused = self._refused
        return what if refused is None else f"{what}; the broker refused the device: {refused}"

    def _open(self, token: str) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self._device_id, protocol=mqtt.MQTTv5
        )
        client.username_pw_set(self._device_id, token)
        client.reconnect_delay_set(_RECONNECT_MIN_S, _RECONNECT_MAX_S)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.connect_async(*self._address, clean_start=True)
        client.loop_start()
        return client

    def _retire(self) -> None:
        """Stop the connection of the previous token, off the loop: it joins a thread."""
        client, self._client = self._client, None
        self._down()
        self._refused = None  # the previous token's
        if client is not None and self._loop is not None:
            client.disconnect()
            self._loop.run_in_executor(None, client.loop_stop)

    # -- paho's network thread ---------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.warning("the broker refused %s: %s", self._device_id, reason)
            self._on_loop(self._up, reason)
            return
        client.subscribe(device_topic(self._device_id, "desired"), qos=1)
        self._on_loop(self._up, None)

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        _reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._on_loop(self._down)

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: object,
        mid: int,
        reason: ReasonCode,
        _properties: Properties,
    ) -> None:
        self._on_loop(self._settle, mid, reason)

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        stated = dict(getattr(msg.properties, "UserProperty", None) or [])
        try:
            state = decode_desired(bytes(msg.payload), stated.get(PROTOCOL_PROPERTY))
        except BadMessage as exc:
            log.warning("ignored a desired state on %s: %s", msg.topic, exc)
            return
        self._on_loop(self._new_desired, state)

    def _on_loop(self, call: Callable[..., None], *args: object) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(call, *args)
