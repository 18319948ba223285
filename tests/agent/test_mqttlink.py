"""The agent's MQTT link against a real (anonymous) Mosquitto."""

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgestack.agent.link import HubUnavailable
from edgestack.agent.mqttlink import MqttLink
from edgestack.mqttwire import PROTOCOL_PROPERTY, decode, device_topic, encode
from edgestack.protocol import PROTOCOL, DesiredState, Hardware, ReportedState

pytestmark = pytest.mark.anyio

T = TypeVar("T")
STATE = ReportedState(
    desired_version=1,
    status="idle",
    hardware=Hardware(cores=1, ram_mb=64, arch="x86_64", providers=[]),
)


class _Watcher:
    """A plain MQTT 5 client of the test's: publishes retained states, keeps what it hears."""

    def __init__(self, broker: tuple[str, int]) -> None:
        self.heard: list[mqtt.MQTTMessage] = []
        self._heard = threading.Condition()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.on_message = self._on_message
        self._client.connect(*broker)
        self._client.loop_start()

    def publish_desired(self, state: DesiredState) -> None:
        properties = Properties(PacketTypes.PUBLISH)
        properties.UserProperty = (PROTOCOL_PROPERTY, str(PROTOCOL))
        info = self._client.publish(
            device_topic("motor-1", "desired"),
            encode("desired", state),
            qos=1,
            retain=True,
            properties=properties,
        )
        info.wait_for_publish(10)

    def listen(self, topic: str) -> None:
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *_: subscribed.set()
        self._client.subscribe(topic, qos=1)
        assert subscribed.wait(10)

    def next_heard(self) -> mqtt.MQTTMessage:
        with self._heard:
            assert self._heard.wait_for(lambda: self.heard, 10), "nothing heard"
            return self.heard.pop(0)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._heard:
            self.heard.append(msg)
            self._heard.notify_all()


@pytest.fixture
def watcher(mosquitto: tuple[str, int]) -> Iterator[_Watcher]:
    watching = _Watcher(mosquitto)
    yield watching
    watching.close()


async def _once_connected(call: Callable[[], Awaitable[T]]) -> T:
    """`call`'s answer once the link has connected: it is unavailable until then."""
    for _ in range(500):
        try:
            return await call()
        except HubUnavailable:
            await asyncio.sleep(0.02)
    raise AssertionError("the link did not connect to the broker")


async def test_a_report_returns_once_published_stating_the_protocol(
    mosquitto: tuple[str, int], watcher: _Watcher
) -> None:
    watcher.listen(device_topic("motor-1", "reported"))
    link = MqttLink("http://hub.invalid", f"mqtt://127.0.0.1:{mosquitto[1]}", "motor-1")
    link.token = "its-token"

    await _once_connected(lambda: link.report("motor-1", STATE))
    await link.aclose()

    heard = watcher.next_heard()
    stated = dict(heard.properties.UserProperty)[PROTOCOL_PROPERTY]  # type: ignore[union-attr]
    assert decode(heard.topic, heard.payload, stated).message == STATE


async def test_desired_answers_with_the_retained_state_then_waits_for_the_next(
    mosquitto: tuple[str, int], watcher: _Watcher
) -> None:
    watcher.publish_desired(DesiredState(version=3))
    link = MqttLink("http://hub.invalid", f"mqtt://127.0.0.1:{mosquitto[1]}", "motor-1")
    link.token = "its-token"

    first = await _once_connected(lambda: link.desired("motor-1", after=0, wait_s=0.2))
    waiting = asyncio.ensure_future(link.desired("motor-1", after=3, wait_s=10))
    await asyncio.sleep(0)
    await asyncio.to_thread(watcher.publish_desired, DesiredState(version=4, stopped=True))
    second = await waiting
    await link.aclose()

    assert first == DesiredState(version=3)
    assert second == DesiredState(version=4, stopped=True)


async def test_without_a_broker_every_publish_is_unavailable_so_the_outbox_keeps_it() -> None:
    # Port 1: nothing listens there, and no one may start a broker on it unprivileged.
    link = MqttLink("http://hub.invalid", "mqtt://127.0.0.1:1", "motor-1")
    link.token = "its-token"

    with pytest.raises(HubUnavailable, match="not connected to the broker"):
        await link.ingest("motor-1", "telemetry", b"\x1f\x8b")
    with pytest.raises(HubUnavailable, match="no desired state"):
        await link.desired("motor-1", after=0, wait_s=0.05)
    await link.aclose()


async def test_a_new_token_opens_a_new_connection_with_it(
    mosquitto: tuple[str, int], watcher: _Watcher
) -> None:
    watcher.listen(device_topic("motor-1", "reported"))
    link = MqttLink("http://hub.invalid", f"mqtt://127.0.0.1:{mosquitto[1]}", "motor-1")
    link.token = "first-token"
    await _once_connected(lambda: link.report("motor-1", STATE))

    link.token = "second-token"
    with pytest.raises(HubUnavailable):  # the first connection is gone at once
        await link.report("motor-1", STATE)
    await _once_connected(lambda: link.report("motor-1", STATE))
    await link.aclose()

    assert link.token == "second-token"
    assert [watcher.next_heard().topic for _ in range(2)] == [
        device_topic("motor-1", "reported")
    ] * 2
