"""Where a device's events go besides the hub: a local JSON-lines log, an MQTT topic.

The hub always gets every event through the agent's outbox; sinks are extra, local
consumers (a PLC listening on the plant's broker, a log a technician can read offline).
A sink never blocks the hot path and never raises on a failed delivery: it counts it.

    sink = SINKS.build("jsonl", {"path": "events.jsonl"})
    sink.emit(event)
"""

import json
import logging
from pathlib import Path
from typing import Annotated, Protocol

import paho.mqtt.client as mqtt
from pydantic import Field

from edgestack.protocol import Event
from edgestack.registry import Registry

__all__ = ["SINKS", "JsonLinesSink", "MqttSink", "Sink"]

log = logging.getLogger("edgestack.sinks")


class Sink(Protocol):
    failed: int

    def emit(self, event: Event) -> None:
        """Deliver one event, or count it in `failed`; never block for long, never raise."""
        ...

    def close(self) -> None: ...


SINKS: Registry[Sink] = Registry("sink", group="edgestack.sinks")


@SINKS.register("jsonl")
class JsonLinesSink:
    """Appends each event as one JSON line to a file, flushed at once.

    Raises ValueError naming `path` when the file cannot be opened for writing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.failed = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise ValueError(
                f"path: cannot write {path}: {exc.strerror or exc}; "
                "choose a file in a folder this process may write to"
            ) from None

    def emit(self, event: Event) -> None:
        try:
            self._file.write(event.model_dump_json() + "\n")
            self._file.flush()
        except OSError as exc:
            self.failed += 1
            log.warning("event not written to %s: %s", self.path, exc)

    def close(self) -> None:
        self._file.close()


@SINKS.register("mqtt")
class MqttSink:
    """Publishes each event as JSON to `topic` (QoS 1); paho queues while the broker is away."""

    def __init__(
        self,
        topic: Annotated[str, Field(min_length=1)],
        host: str = "127.0.0.1",
        port: Annotated[int, Field(ge=1, le=65535)] = 1883,
    ) -> None:
        self.topic = topic
        self.failed = 0
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self._client.max_queued_messages_set(10_000)
        self._client.connect_async(host, port)
        self._client.loop_start()

    def emit(self, event: Event) -> None:
        payload = json.dumps(event.model_dump(mode="json"))
        info = self._client.publish(self.topic, payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self.failed += 1

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
