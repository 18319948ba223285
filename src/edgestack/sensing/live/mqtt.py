"""Sensor readings published to an MQTT broker, one topic per sensor or per device.

source = MqttSource(
    {"plant/+/temperature": ["temperature"], "plant/air": ["humidity", "co2"]},
    host="127.0.0.1",
    units={"temperature": "degC", "humidity": "%", "co2": "ppm"},
)
chunk = source.read(100)   # whatever arrived since the last read, at most 100 rows
"""

import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import Field

from edgestack.sensing.chunk import Chunk
from edgestack.sensing.live._payload import BadReading, Format, Parser, Rows, TimeFrom, units_for
from edgestack.sensing.quality import Quality
from edgestack.sensing.source import SOURCES

__all__ = ["MqttSource"]

_RECONNECT_MIN_S = 1
_RECONNECT_MAX_S = 30


@SOURCES.register("mqtt")
class MqttSource:
    """Readings from MQTT topics; implements `Source` and never blocks on the broker.

    `topics` maps a topic filter (`+` and `#` wildcards allowed) to the channels its messages
    carry; a topic matching several filters belongs to the first. Payloads are `json` (the time
    under `time_key` and a key per channel, `{"t": 1700000000.1, "temperature": 21.5}`, or
    `"value"` for a one-channel topic; `fields` maps a JSON key to a channel where names
    differ; other keys are ignored) or `csv` (`"t,v1,v2"`, values in channel order). Times are
    seconds since the epoch, or with `time_from="arrival"` when the message arrived. `units`
    is a list in channel order or a channel-to-unit mapping; `rate_hz` is nominal.

    Each reading becomes a row of every channel, holding the last known value (NaN before the
    first) of channels it does not carry; readings with the same time share a row while it is
    unread. paho's network thread connects, reconnects after the broker goes away, resubscribes
    and queues messages, at most `buffer` (the oldest dropped), until `read` parses them. Bad
    input is counted in `quality` by the next `read`: `malformed_payload`,
    `wrong_channel_count`, `non_numeric`, `time_backwards`, `unknown_topic`,
    `buffer_overflow`, `connect_refused`, `subscribe_refused`.
    """

    def __init__(
        self,
        topics: Mapping[str, Sequence[str]],
        host: str = "127.0.0.1",
        port: Annotated[int, Field(gt=0, lt=65536)] = 1883,
        username: str | None = None,
        password: str | None = None,
        format: Format = "json",
        fields: Mapping[str, str] | None = None,
        time_from: TimeFrom = "payload",
        time_key: str = "t",
        units: Mapping[str, str] | Sequence[str] | None = None,
        rate_hz: Annotated[float, Field(gt=0)] = 1.0,
        buffer: Annotated[int, Field(gt=0)] = 10_000,
    ) -> None:
        if not topics or not all(topics.values()):
            raise ValueError("topics: map each topic filter to the channels its messages carry")
        self.channels = tuple(dict.fromkeys(c for names in topics.values() for c in names))
        self.units = units_for(self.channels, units)
        self.rate_hz = float(rate_hz)
        self.quality = Quality()
        key_of = {channel: key for key, channel in (fields or {}).items()}
        self._topics = {
            topic: (
                [self.channels.index(c) for c in names],
                Parser(format, [key_of.get(c, c) for c in names], time_from, time_key),
            )
            for topic, names in topics.items()
        }
        self._rows = Rows(self.channels, self.units, self.rate_hz, buffer, merge=True)
        # Filled by paho's thread, emptied by `read`: `Quality` is not thread-safe, so what that
        # thread notices waits in `_noticed` under the same lock until `read` counts it.
        self._lock = threading.Lock()
        self._inbox: deque[tuple[str, bytes, float]] = deque(maxlen=buffer)
        self._noticed = Quality()
        self._subscribed = threading.Event()

        self._client = mqtt.Client(CallbackAPIVersion.VERSION2)
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.reconnect_delay_set(_RECONNECT_MIN_S, _RECONNECT_MAX_S)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.connect_async(host, port)
        self._client.loop_start()

    @property
    def connected(self) -> bool:
        """Whether the broker is connected and has acknowledged the subscriptions."""
        return self._subscribed.is_set()

    def read(self, n: int) -> Chunk:
        with self._lock:
            messages = list(self._inbox)
            self._inbox.clear()
            counts, examples = self._noticed.take()
        _count_into(self.quality, counts, examples)
        for topic, payload, arrival in messages:
            self._accept(topic, payload, arrival)
        return self._rows.take(n)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        self._subscribed.clear()

    def _accept(self, topic: str, payload: bytes, arrival: float) -> None:
        match = next((t for t in self._topics if mqtt.topic_matches_sub(t, topic)), None)
        if match is None:
            self.quality.count("unknown_topic", example=topic)
            return
        columns, parser = self._topics[match]
        try:
            t, values = parser.parse(payload, arrival)
        except BadReading as bad:
            self.quality.count(bad.reason, example=f"{topic}: {bad.example}")
            return
        self._rows.add(t, columns, values, self.quality)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            with self._lock:
                self._noticed.count("connect_refused", example=str(reason))
            return
        client.subscribe([(topic, 0) for topic in self._topics])

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode], props: Any
    ) -> None:
        refused = [str(reason) for reason in reasons if reason.is_failure]
        if refused:
            with self._lock:
                self._noticed.count("subscribe_refused", example=", ".join(refused))
            return
        self._subscribed.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        self._subscribed.clear()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        arrival = time.time()
        with self._lock:
            if len(self._inbox) == self._inbox.maxlen:
                self._noticed.count("buffer_overflow", example=f"{self._inbox[0][0]} dropped")
            self._inbox.append((message.topic, bytes(message.payload), arrival))


def _count_into(quality: Quality, counts: dict[str, int], examples: list[tuple[str, str]]) -> None:
    """Add what another `Quality` counted, examples included, to `quality`."""
    for reason, example in examples:
        quality.count(reason, example=example)
        counts[reason] -= 1
    for reason, n in counts.items():
        quality.count(reason, n)
