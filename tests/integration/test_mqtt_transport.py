"""Agents reaching the hub through a real Mosquitto with per-device accounts and ACLs, as
`edgestack broker config` sets it up: one broker, hub and two agents for the whole file."""

import contextlib
import shutil
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from conftest import Mosquitto, mosquitto_binary
from edgestack.agent.store import LocalStore
from edgestack.client import HubError
from edgestack.demo import LocalFleet, wait_until
from edgestack.demo.services import HubBroker
from edgestack.mqttwire import PROTOCOL_PROPERTY, decode, decode_desired, device_topic, encode
from edgestack.protocol import PROTOCOL, DesiredPatch, Hardware, ReportedState, TelemetryBatch

pytestmark = pytest.mark.integration

DEVICES = ["dev-a", "dev-b"]
HUB_PASSWORD = "hub-broker-secret"
WAIT_S = 60
_EDGESTACK = [sys.executable, "-m", "edgestack"]


@dataclass
class MqttFleet:
    fleet: LocalFleet
    hub_broker: HubBroker

    @property
    def broker(self) -> Mosquitto:
        return self.hub_broker.mosquitto

    @property
    def url(self) -> str:
        return self.hub_broker.url

    @property
    def hub_env(self) -> dict[str, str]:
        return self.hub_broker.hub_env

    def restart_broker(self) -> None:
        self.hub_broker.start()


@contextlib.contextmanager
def broker_and_hub(agents: list[str], hub_env: dict[str, str] | None = None) -> Iterator[MqttFleet]:
    """A Mosquitto set up by `edgestack broker config`, a hub with its accounts and ACL
    (`hub_env` added to its environment) and agents `agents` reporting through it."""
    # Not under pytest's temporary directory, which only its owner may enter: the broker
    # drops to a user of its own when started as root.
    workdir = Path(tempfile.mkdtemp(prefix="edgestack-mqtt-"))
    workdir.chmod(0o755)
    broker = HubBroker(mosquitto_binary(), workdir, HUB_PASSWORD)
    setup = MqttFleet(LocalFleet(workdir / "fleet", agents), broker)
    try:
        setup.restart_broker()
        setup.fleet.start_hub(env={**(hub_env or {}), **broker.hub_env})
        for device in agents:
            setup.fleet.start_agent(device, transport=setup.url)
        for device in agents:
            wait_until(
                lambda d=device: _reported(setup.fleet, d),  # type: ignore[misc]
                timeout_s=WAIT_S,
                what=f"{device} to report through the broker",
            )
        yield setup
    finally:
        setup.fleet.stop()
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def mqtt_fleet() -> Iterator[MqttFleet]:
    with broker_and_hub(DEVICES) as setup:
        yield setup


def test_telemetry_published_by_an_agent_is_stored(mqtt_fleet: MqttFleet) -> None:
    client = mqtt_fleet.fleet.client

    stored = wait_until(
        lambda: client.telemetry("dev-a"), timeout_s=WAIT_S, what="dev-a's telemetry"
    )

    assert stored[0].batch.seq >= 1
    assert client.device("dev-a").reported.status in ("idle", "running")  # type: ignore[union-attr]


def test_a_desired_change_reaches_the_agent_through_its_retained_topic(
    mqtt_fleet: MqttFleet,
) -> None:
    client = mqtt_fleet.fleet.client

    desired = client.update_desired("dev-a", DesiredPatch(telemetry_interval_s=0.5))

    wait_until(
        lambda: client.device("dev-a").reported.desired_version == desired.version,  # type: ignore[union-attr]
        timeout_s=WAIT_S,
        what="dev-a to apply the new desired state",
    )
    with _Session(mqtt_fleet, "edgestack_hub", HUB_PASSWORD) as hub:
        hub.subscribe(device_topic("dev-a", "desired"))
        retained = hub.next_message()
    assert retained.retain
    assert decode_desired(retained.payload, _protocol(retained)) == desired


def test_a_device_can_neither_publish_nor_subscribe_as_another(mqtt_fleet: MqttFleet) -> None:
    client = mqtt_fleet.fleet.client
    token = _enrol(mqtt_fleet, "dev-c")
    forged, own = _batch(), _batch()

    with _Session(mqtt_fleet, "dev-c", token) as device:
        refused_publish = device.publish(device_topic("dev-b", "telemetry"), forged)
        # Refused at once by some brokers (EMQX); Mosquitto grants it and delivers nothing.
        device.subscribe(device_topic("dev-b", "desired"))
        accepted_publish = device.publish(device_topic("dev-c", "telemetry"), own)
        device.subscribe(device_topic("dev-c", "desired"))
        first = device.next_message()

    assert refused_publish.is_failure and not accepted_publish.is_failure
    # dev-b's retained state, had the broker delivered it, came before dev-c's.
    assert first.topic == device_topic("dev-c", "desired")
    wait_until(lambda: client.telemetry("dev-c"), timeout_s=WAIT_S, what="dev-c's own telemetry")
    assert forged.batch_id not in {t.batch.batch_id for t in client.telemetry("dev-b", limit=500)}


def test_a_wrong_password_is_refused(mqtt_fleet: MqttFleet) -> None:
    _enrol(mqtt_fleet, "dev-d")

    with pytest.raises(ConnectionRefusedError):
        _Session(mqtt_fleet, "dev-d", "not-its-token", retry=False).__enter__()


def test_an_agent_whose_token_is_revoked_is_cut_off_asks_the_hub_and_enrols_again() -> None:
    with broker_and_hub(["dev-r"]) as setup:
        store = LocalStore(setup.fleet.root / "dev-r" / "agent.db")
        held = store.get("device_token")
        store.close()
        assert isinstance(held, str)
        log = setup.fleet.root / "dev-r.log"
        seen = len(log.read_text())
        _enrol(setup, "dev-r", device_token=held)  # rotated elsewhere: the agent's is revoked

        # Mosquitto drops the connection the old token opened once the hub has it reread its
        # accounts, and refuses the next one: the agent asks the hub why.
        wait_until(
            lambda: "hub refused our token" in log.read_text()[seen:],
            timeout_s=WAIT_S,
            what="dev-r to learn from the hub that its token is gone",
        )
        wait_until(
            lambda: "waiting for approval" in log.read_text()[seen:],
            timeout_s=WAIT_S,
            what="dev-r to enrol again, waiting for approval as a device that lost its token",
        )


def test_batches_cut_while_the_broker_was_down_arrive_once_when_it_returns(
    mqtt_fleet: MqttFleet,
) -> None:
    client = mqtt_fleet.fleet.client
    log = mqtt_fleet.fleet.root / "dev-a.log"
    seen = len(log.read_text())

    mqtt_fleet.broker.stop()
    wait_until(
        lambda: "not connected to the broker" in log.read_text()[seen:],
        timeout_s=WAIT_S,
        what="dev-a to find the broker gone and keep its batches",
    )
    last_before = max(t.batch.seq for t in client.telemetry("dev-a", newest_first=True))
    mqtt_fleet.restart_broker()
    wait_until(
        lambda: (
            max(t.batch.seq for t in client.telemetry("dev-a", newest_first=True)) > last_before + 2
        ),
        timeout_s=WAIT_S,
        what="dev-a's batches to arrive after the broker came back",
    )

    seqs = [t.batch.seq for t in client.telemetry("dev-a", limit=1000)]
    assert len(seqs) == len(set(seqs))
    assert sorted(seqs) == list(range(min(seqs), max(seqs) + 1))


def test_batches_published_while_the_hub_was_down_wait_in_the_broker_for_it(
    mqtt_fleet: MqttFleet,
) -> None:
    client = mqtt_fleet.fleet.client

    with _Session(mqtt_fleet, "edgestack_hub", HUB_PASSWORD) as copy:
        copy.subscribe(device_topic("dev-a", "telemetry"))
        mqtt_fleet.fleet.stop_hub()
        copy.forget()
        # Each a batch the hub has not seen: the agent keeps publishing to the broker.
        copies = [copy.next_message() for _ in range(3)]
    mqtt_fleet.fleet.start_hub(env=mqtt_fleet.hub_env)

    published = {
        decode(m.topic, m.payload, _protocol(m)).message.batch_id  # type: ignore[union-attr]
        for m in copies
    }
    wait_until(
        lambda: (
            published
            <= {t.batch.batch_id for t in client.telemetry("dev-a", newest_first=True, limit=50)}
        ),
        timeout_s=WAIT_S,
        what="the batches published while the hub was down to be stored",
    )


def test_more_batches_than_mosquittos_default_queue_wait_in_the_broker_for_the_hub(
    mqtt_fleet: MqttFleet,
) -> None:
    client = mqtt_fleet.fleet.client
    token = _enrol(mqtt_fleet, "dev-e")
    # Past Mosquitto's default of 1000 messages queued for a subscriber that is away.
    batches = [_batch() for _ in range(1100)]

    with _Session(mqtt_fleet, "dev-e", token) as device:
        mqtt_fleet.fleet.stop_hub()
        topic = device_topic("dev-e", "telemetry")
        refused = [b for b in batches if device.publish(topic, b).is_failure]
    mqtt_fleet.fleet.start_hub(env=mqtt_fleet.hub_env)

    assert refused == []
    wait_until(
        lambda: client.device("dev-e").telemetry.batches == len(batches),
        timeout_s=WAIT_S,
        what="every batch the broker acked while the hub was away to be stored",
    )


class _Session:
    """A paho MQTT 5 client of the test's, waited on with bounded waits."""

    def __init__(self, setup: MqttFleet, user: str, password: str, *, retry: bool = True):
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self._client.username_pw_set(user, password)
        self._setup = setup
        self._retry = retry
        self._connected = threading.Event()
        self._reason: ReasonCode | None = None
        self._acks: dict[int, ReasonCode] = {}
        self._acked = threading.Condition()
        self._messages: list[mqtt.MQTTMessage] = []
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_ack
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def __enter__(self) -> "_Session":
        self._client.reconnect_delay_set(1, 2)
        self._client.connect_async(self._setup.broker.host, self._setup.broker.port)
        self._client.loop_start()
        if not self._retry:
            assert self._connected.wait(10), "no CONNACK"
            if self._reason is not None and self._reason.is_failure:
                self.__exit__()
                raise ConnectionRefusedError(str(self._reason))
        # The hub has the broker reread its accounts as a device enrols: soon, not at once.
        wait_until(
            lambda: self._reason is not None and not self._reason.is_failure,
            timeout_s=WAIT_S,
            what="the broker to accept the account",
        )
        return self

    def __exit__(self, *_: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, batch: TelemetryBatch) -> ReasonCode:
        properties = Properties(PacketTypes.PUBLISH)
        properties.UserProperty = (PROTOCOL_PROPERTY, str(PROTOCOL))
        info = self._client.publish(topic, encode("telemetry", batch), qos=1, properties=properties)
        return self._ack(info.mid)

    def subscribe(self, topic: str) -> ReasonCode:
        _, mid = self._client.subscribe(topic, qos=1)
        assert mid is not None
        return self._ack(mid)

    def forget(self) -> None:
        """Forget the messages heard so far."""
        with self._acked:
            self._messages.clear()

    def next_message(self) -> mqtt.MQTTMessage:
        with self._acked:
            assert self._acked.wait_for(lambda: self._messages, 10), "no message came"
            return self._messages.pop(0)

    def _ack(self, mid: int) -> ReasonCode:
        with self._acked:
            assert self._acked.wait_for(lambda: mid in self._acks, 10), f"no ack of {mid}"
            return self._acks.pop(mid)

    def _on_connect(
        self, _c: object, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        self._reason = reason
        self._connected.set()

    def _on_ack(self, _c: object, _u: object, mid: int, reason: ReasonCode, _p: object) -> None:
        with self._acked:
            self._acks[mid] = reason
            self._acked.notify_all()

    def _on_subscribe(
        self, _c: object, _u: object, mid: int, reasons: list[ReasonCode], _p: object
    ) -> None:
        self._on_ack(_c, _u, mid, reasons[0], _p)

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._acked:
            self._messages.append(msg)
            self._acked.notify_all()


def _reported(fleet: LocalFleet, device_id: str) -> ReportedState | None:
    try:
        return fleet.client.device(device_id).reported
    except HubError:  # not enrolled yet
        return None


def _enrol(setup: MqttFleet, device_id: str, device_token: str | None = None) -> str:
    """A new token for `device_id`; given the one it holds, the hub rotates it at once."""
    body = {
        "device_id": device_id,
        "enrol_token": setup.fleet.enrol_token,
        "hardware": Hardware(cores=1, ram_mb=64, arch="x86_64", providers=[]).model_dump(),
        "device_token": device_token,
    }
    response = httpx.post(f"{setup.fleet.hub_url}/api/v1/enrol", json=body, timeout=10)
    response.raise_for_status()
    token: str = response.json()["device_token"]
    return token


def _batch() -> TelemetryBatch:
    now = datetime.now(UTC)
    return TelemetryBatch(
        batch_id=uuid.uuid4(), seq=1, start=now, end=now, windows=1, raw_bytes=0, uplink_bytes=0
    )


def _protocol(msg: mqtt.MQTTMessage) -> str | None:
    return dict(getattr(msg.properties, "UserProperty", None) or []).get(PROTOCOL_PROPERTY)
