"""The hub's side of devices over an MQTT broker: a task in the hub's process that stores
what devices publish and publishes each device's desired state, retained.

It subscribes with MQTT 5 shared subscriptions (`$share/edgestack-hub/...`), so several hub
replicas split the devices' messages, in a persistent session, so what arrives while the
hub is away waits in the broker. A message is acknowledged only once what it carries is
committed, or once it is refused for good: a hub killed in between gets it again. It stores
through the same store functions the HTTP routes call.
"""

import asyncio
import logging
import math
import socket
import time
from collections import Counter
from collections.abc import Sequence
from typing import get_args

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from edgestack.hub import broker
from edgestack.hub.context import HubContext
from edgestack.hub.errors import HubProblem
from edgestack.hub.store import devices, events, telemetry
from edgestack.hub.store.tables import DeviceRow
from edgestack.mqttwire import (
    PROTOCOL_PROPERTY,
    BadMessage,
    Uplink,
    UplinkKind,
    broker_address,
    decode,
    device_topic,
    encode,
    shared_subscription,
)
from edgestack.protocol import PROTOCOL, EventBatch, ReportedState, TelemetryBatch

__all__ = ["Bridge"]

log = logging.getLogger("edgestack.hub.bridge")

# How long the broker keeps the hub's session, and the messages for it, while it is away.
_SESSION_EXPIRY_S = 3600
_RECONNECT_MIN_S = 1
_RECONNECT_MAX_S = 5
_BATCH = 200
_RETRY_S = 1.0
_TELL_EVERY_S = 60.0


class Bridge:
    """Runs from `run` until `stop`. `counts` holds what it did with each message it took:
    `stored`, `duplicate`, the reason it refused it (`topic`, `size`, `protocol`,
    `encoding`, `invalid`, `unknown_device`, `refused`), or `failed`, logged with its
    traceback."""

    def __init__(self, hub: HubContext) -> None:
        assert hub.settings.broker_url is not None
        self._hub = hub
        self._address = broker_address(hub.settings.broker_url)
        self.counts: Counter[str] = Counter()
        self._stopping = asyncio.Event()
        self._inbox: asyncio.Queue[mqtt.MQTTMessage] = asyncio.Queue()
        self._due: set[str] = set()
        self._all_due = True
        self._publish_due = asyncio.Event()
        self._accounts_due = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        # When each device was last told of a refusal; only the storing thread touches it.
        self._told: dict[str, float] = {}
        settings = hub.settings
        # Stable across restarts, so the broker hands a restarted replica its own session.
        client_id = f"{settings.broker_user}-{socket.gethostname()}-{settings.port}"[:64]
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        self._client.username_pw_set(
            settings.broker_user, settings.broker_password.get_secret_value()
        )
        self._client.reconnect_delay_set(_RECONNECT_MIN_S, _RECONNECT_MAX_S)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message

    def stop(self) -> None:
        self._stopping.set()

    def changed(self, device_id: str) -> None:
        """Publish `device_id`'s desired state soon; called on the hub's event loop."""
        self._due.add(device_id)
        self._publish_due.set()

    def enrolled(self, device_id: str) -> None:
        """A device enrolled: rewrite the broker's accounts and publish its desired state.
        Called from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._accounts_due.set)
            self._loop.call_soon_threadsafe(self.changed, device_id)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._hub.notifier.listen(self.changed)
        await self._refresh_accounts()
        connect = Properties(PacketTypes.CONNECT)
        connect.SessionExpiryInterval = _SESSION_EXPIRY_S
        self._client.connect_async(*self._address, clean_start=False, properties=connect)
        self._client.loop_start()
        try:
            async with asyncio.TaskGroup() as tasks:
                work = [
                    tasks.create_task(self._take()),
                    tasks.create_task(self._publish()),
                    tasks.create_task(self._keep_accounts()),
                ]
                await self._stopping.wait()
                for task in work:
                    task.cancel()
        finally:
            self._hub.notifier.unlisten(self.changed)
            self._client.disconnect()
            await asyncio.to_thread(self._client.loop_stop)

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
            log.error("the broker refused the hub: %s", reason)
            return
        client.subscribe([(shared_subscription(kind), 1) for kind in _UPLINK])
        if self._loop is not None:
            # A broker that restarted without persistence forgot its retained states.
            self._loop.call_soon_threadsafe(self._publish_all)

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._inbox.put_nowait, msg)

    # -- the hub's event loop ----------------------------------------------

    def _publish_all(self) -> None:
        self._all_due = True
        self._publish_due.set()

    async def _take(self) -> None:
        while True:
            taken = [await self._inbox.get()]
            while len(taken) < _BATCH and not self._inbox.empty():
                taken.append(self._inbox.get_nowait())
            while True:
                try:
                    await asyncio.to_thread(self.store_all, [_read(msg) for msg in taken])
                    break
                except DBAPIError:  # nothing was kept: the messages wait, unacknowledged
                    log.exception("storing %d MQTT messages failed; trying again", len(taken))
                    await asyncio.sleep(_RETRY_S)
            # In the order they came, as MQTT asks, and only once they are committed.
            for msg in taken:
                self._client.ack(msg.mid, msg.qos)

    def store(self, topic: str, payload: bytes, protocol: str | None) -> str:
        """Store one message as it came, its `edgestack-protocol` property as `protocol`; what
        became of it (see `counts`)."""
        return self.store_all([(topic, payload, protocol)])[0]

    def store_all(self, messages: Sequence[tuple[str, bytes, str | None]]) -> list[str]:
        """Store `(topic, payload, protocol)` messages in one transaction, each in a savepoint
        of its own so one refused leaves the others; what became of each, in order, also
        counted in `counts`. Raises `DBAPIError` when the database fails: nothing is kept."""
        refusals: list[tuple[str, str]] = []
        decoded = [self._decode(*message, refusals) for message in messages]
        with self._hub.db.writer() as session:
            known = devices.enrolled(
                session, {item.device_id for item in decoded if isinstance(item, Uplink)}
            )
            together = _stored_together(session, decoded, known)
            outcomes = [
                together.get(at)
                or (
                    self._ingest(session, item, known, refusals)
                    if isinstance(item, Uplink)
                    else item
                )
                for at, item in enumerate(decoded)
            ]
            told = self._tell(session, refusals)
            session.commit()
        self._told.update(told)
        self.counts.update(outcomes)
        return outcomes

    def _decode(
        self, topic: str, payload: bytes, protocol: str | None, refusals: list[tuple[str, str]]
    ) -> Uplink | str:
        try:
            return decode(topic, payload, protocol)
        except BadMessage as exc:
            log.warning("refused an MQTT message (%s): %s", exc.reason, exc)
            if exc.reason != "topic":  # the topic, and so the device, is a good one
                refusals.append((topic.split("/")[2], f"the hub refused its message: {exc}"))
            return exc.reason

    def _ingest(
        self, session: Session, uplink: Uplink, known: set[str], refusals: list[tuple[str, str]]
    ) -> str:
        if uplink.device_id not in known:
            log.warning("refused an MQTT message: %s is not enrolled", uplink.device_id)
            return "unknown_device"
        try:
            with session.begin_nested():
                return _store_uplink(session, uplink)
        except HubProblem as exc:
            log.warning("refused %s's %s: %s", uplink.device_id, uplink.kind, exc)
            refusals.append((uplink.device_id, f"the hub refused its {uplink.kind}: {exc}"))
            return "refused"
        except DBAPIError:
            raise
        except Exception:  # one message the hub cannot handle must not hold up all behind it
            log.exception("dropped %s's %s: the hub failed on it", uplink.device_id, uplink.kind)
            return "failed"

    def _tell(self, session: Session, refusals: list[tuple[str, str]]) -> dict[str, float]:
        """Record refusals as `error` events of their devices, at most one a minute for each:
        the broker acknowledged the message to the device, which cannot know otherwise."""
        now = time.monotonic()
        told: dict[str, float] = {}
        for device_id, message in refusals:
            if now - self._told.get(device_id, -math.inf) < _TELL_EVERY_S or device_id in told:
                continue
            if devices.find(session, device_id) is None:
                continue
            events.record(session, "error", message, device_id=device_id, severity="warning")
            told[device_id] = now
        return told

    async def _publish(self) -> None:
        while True:
            await self._publish_due.wait()
            self._publish_due.clear()
            everyone, self._all_due = self._all_due, False
            due, self._due = self._due, set()
            try:
                await asyncio.to_thread(self._publish_states, None if everyone else due)
            except Exception:  # the database went away; the next change publishes them all
                log.exception("publishing desired states failed; trying again")
                self._all_due = True
                await asyncio.sleep(_RETRY_S)
                self._publish_due.set()

    def _publish_states(self, device_ids: set[str] | None) -> None:
        """Publish the desired state of `device_ids`, of every device when None."""
        with self._hub.db.session() as session:
            if device_ids is None:
                device_ids = set(session.scalars(_EVERY_DEVICE))
            states = [
                (device_id, devices.desired(session, device_id))
                for device_id in sorted(device_ids)
                if devices.find(session, device_id) is not None
            ]
        for device_id, state in states:
            self._client.publish(
                device_topic(device_id, "desired"),
                encode("desired", state),
                qos=1,
                retain=True,
                properties=_stated(),
            )

    async def _keep_accounts(self) -> None:
        while True:
            await self._accounts_due.wait()
            self._accounts_due.clear()
            await self._refresh_accounts()

    async def _refresh_accounts(self) -> None:
        try:
            await asyncio.to_thread(broker.refresh, self._hub.db, self._hub.settings)
        except (OSError, DBAPIError):
            # Devices enrolled since wait for the next enrolment's rewrite, or a restart.
            log.exception("writing the broker's account files failed")


_UPLINK: tuple[UplinkKind, ...] = get_args(UplinkKind)
_EVERY_DEVICE = select(DeviceRow.device_id)


def _stored_together(
    session: Session, decoded: Sequence[Uplink | str], known: set[str]
) -> dict[int, str]:
    """The telemetry batches of enrolled devices among `decoded`, stored in one call as the
    HTTP route's group commit stores them: what became of each, by its place. Nothing, and
    nothing kept, when one of them is refused or fails: each is then stored on its own."""
    batches = {
        place: (item.device_id, item.message)
        for place, item in enumerate(decoded)
        if isinstance(item, Uplink)
        and isinstance(item.message, TelemetryBatch)
        and item.device_id in known
    }
    if len(batches) < 2:
        return {}
    try:
        with session.begin_nested():
            acks = telemetry.ingest_many(session, list(batches.values()))
    except DBAPIError:
        raise
    except Exception:  # each alone tells which, as `Bridge._ingest` does
        return {}
    return {
        place: "duplicate" if ack.duplicate else "stored"
        for place, ack in zip(batches, acks, strict=True)
    }


def _store_uplink(session: Session, uplink: Uplink) -> str:
    match uplink.message:
        case TelemetryBatch() as batch:
            ack = telemetry.ingest(session, uplink.device_id, batch)
        case EventBatch() as batch:
            ack = events.ingest(session, uplink.device_id, batch)
        case ReportedState() as state:
            devices.report(session, uplink.device_id, state)
            return "stored"
    return "duplicate" if ack.duplicate else "stored"


def _read(msg: mqtt.MQTTMessage) -> tuple[str, bytes, str | None]:
    try:
        topic = msg.topic
    except UnicodeDecodeError:
        topic = "(not UTF-8)"
    return topic, bytes(msg.payload), _protocol_of(msg)


def _protocol_of(msg: mqtt.MQTTMessage) -> str | None:
    properties = getattr(msg, "properties", None)
    for name, value in getattr(properties, "UserProperty", None) or []:
        if name == PROTOCOL_PROPERTY:
            return str(value)
    return None


def _stated() -> Properties:
    properties = Properties(PacketTypes.PUBLISH)
    properties.UserProperty = (PROTOCOL_PROPERTY, str(PROTOCOL))
    return properties
