import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest

from edgestack.sensing import SOURCES, MqttSource

Publish = Callable[[str, bytes | str], None]
MakeSource = Callable[..., MqttSource]

_DEADLINE_S = 15.0  # covers paho's reconnect back-off after a broker restart


@contextmanager
def _publisher(host: str, port: int) -> Iterator[Publish]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(host, port)
    client.loop_start()

    def publish(topic: str, payload: bytes | str) -> None:
        # QoS 1 and waiting for the broker's ack keep messages in order across topics.
        client.publish(topic, payload, qos=1).wait_for_publish(timeout=5)

    try:
        yield publish
    finally:
        client.disconnect()
        client.loop_stop()


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {_DEADLINE_S} s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def make_source() -> Iterator[MakeSource]:
    made: list[MqttSource] = []

    def make(**params: Any) -> MqttSource:
        source = SOURCES.build("mqtt", params)
        assert isinstance(source, MqttSource)
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


def _connected(make_source: MakeSource, port: int, **params: Any) -> MqttSource:
    source = make_source(port=port, **params)
    _wait(lambda: source.connected, "the source to subscribe")
    return source


def test_readings_from_several_topics_become_rows_with_last_known_values(
    mosquitto: tuple[str, int], make_source: MakeSource, read_rows: Any
) -> None:
    host, port = mosquitto
    source = _connected(
        make_source,
        port,
        topics={"plant/+/temperature": ["temperature"], "plant/air": ["humidity", "co2"]},
        fields={"hum": "humidity"},
        units={"temperature": "degC", "humidity": "%"},
    )

    with _publisher(host, port) as publish:
        publish("plant/m1/temperature", json.dumps({"t": 100.0, "value": 21.5}))
        publish("plant/air", json.dumps({"t": 101.0, "hum": 40, "co2": 415, "rssi": -60}))
        publish("plant/m2/temperature", json.dumps({"t": 102.5, "temperature": 22.0}))
        chunk = read_rows(source, 3)

    assert chunk.channels == ("temperature", "humidity", "co2")
    assert chunk.units == ("degC", "%", "")
    np.testing.assert_array_equal(chunk.timestamps, [100.0, 101.0, 102.5])
    np.testing.assert_array_equal(
        chunk.data, [[21.5, 21.5, 22.0], [np.nan, 40, 40], [np.nan, 415, 415]]
    )


def test_bad_json_messages_are_counted_per_reason_and_good_ones_come_through(
    mosquitto: tuple[str, int], make_source: MakeSource, read_rows: Any
) -> None:
    host, port = mosquitto
    source = _connected(make_source, port, topics={"dev/level": ["level"]})
    bad = {
        b"{not json": "malformed_payload",
        b"[1, 2]": "malformed_payload",
        b"\xff\xfe": "malformed_payload",
        b'{"value": 2}': "malformed_payload",
        b'{"t": 2, "value": "high"}': "non_numeric",
        b'{"t": 2, "value": true}': "non_numeric",
        b'{"t": 2, "depth": 3}': "wrong_channel_count",
        b'{"t": 0.5, "value": 9}': "time_backwards",
    }

    with _publisher(host, port) as publish:
        publish("dev/level", json.dumps({"t": 1.0, "value": 1.0}))
        for payload in bad:
            publish("dev/level", payload)
        publish("dev/level", json.dumps({"t": 3.0, "value": 3.0}))
        chunk = read_rows(source, 2)
    counts, examples = source.quality.take()

    np.testing.assert_array_equal(chunk.timestamps, [1.0, 3.0])
    np.testing.assert_array_equal(chunk.data, [[1.0, 3.0]])
    assert counts == {reason: list(bad.values()).count(reason) for reason in set(bad.values())}
    assert {reason for reason, _ in examples} == set(bad.values())
    assert ("malformed_payload", "dev/level: {not json") in examples


def test_csv_messages_carry_their_time_first_and_a_value_per_channel(
    mosquitto: tuple[str, int], make_source: MakeSource, read_rows: Any
) -> None:
    host, port = mosquitto
    source = _connected(make_source, port, topics={"imu/+": ["x", "y"]}, format="csv")

    with _publisher(host, port) as publish:
        for payload in ("10.0,1,2", "11.0,3", "12.0,x,4", "13.0, 5 , 6 \n"):
            publish("imu/left", payload)
        chunk = read_rows(source, 2)

    np.testing.assert_array_equal(chunk.timestamps, [10.0, 13.0])
    np.testing.assert_array_equal(chunk.data, [[1, 5], [2, 6]])
    assert source.quality.take()[0] == {"wrong_channel_count": 1, "non_numeric": 1}


def test_readings_without_a_time_are_stamped_on_arrival(
    mosquitto: tuple[str, int], make_source: MakeSource, read_rows: Any
) -> None:
    host, port = mosquitto
    source = _connected(
        make_source, port, topics={"lux": ["light"]}, format="csv", time_from="arrival"
    )

    with _publisher(host, port) as publish:
        before = time.time()
        publish("lux", "350")
        chunk = read_rows(source, 1)
        after = time.time()

    assert chunk.data[0, 0] == 350
    assert before <= chunk.timestamps[0] <= after


def test_the_source_receives_again_after_the_broker_restarts(
    mosquitto_broker: Any, make_source: MakeSource, read_rows: Any
) -> None:
    host, port = mosquitto_broker.host, mosquitto_broker.port
    source = _connected(make_source, port, topics={"dev/level": ["level"]})
    with _publisher(host, port) as publish:
        publish("dev/level", json.dumps({"t": 1.0, "value": 1.0}))
        before = read_rows(source, 1)

    mosquitto_broker.stop()
    _wait(lambda: not source.connected, "the source to notice the broker is gone")
    mosquitto_broker.start()
    _wait(lambda: source.connected, "the source to reconnect")
    with _publisher(host, port) as publish:
        publish("dev/level", json.dumps({"t": 2.0, "value": 2.0}))
        after = read_rows(source, 1)

    assert before.timestamps[0] == 1.0
    assert after.timestamps[0] == 2.0
    assert after.data[0, 0] == 2.0


def test_without_a_broker_reads_are_empty_and_close_is_prompt(make_source: MakeSource) -> None:
    with socket.socket() as reserved:  # bound but not listening: connections are refused
        reserved.bind(("127.0.0.1", 0))
        source = make_source(port=reserved.getsockname()[1], topics={"a/b": ["x", "y"]})

        chunks = [source.read(10) for _ in range(3)]
        started = time.monotonic()
        source.close()
        closing_s = time.monotonic() - started

    assert all(chunk.data.shape == (2, 0) for chunk in chunks)
    assert not source.connected
    assert closing_s < 3.0


def _message(topic: str, payload: bytes) -> mqtt.MQTTMessage:
    message = mqtt.MQTTMessage(topic=topic.encode())
    message.payload = payload
    return message


def test_messages_beyond_the_buffer_drop_the_oldest_and_unknown_topics_are_counted(
    make_source: MakeSource,
) -> None:
    # Driven through paho's message callback: a broker delivers neither case on demand.
    source = make_source(port=1, topics={"dev/+": ["level"]}, buffer=3)
    for t in range(5):
        source._on_message(source._client, None, _message("dev/a", b'{"t": %d, "value": 1}' % t))
    source._on_message(source._client, None, _message("other", b'{"t": 9, "value": 1}'))

    chunk = source.read(10)

    np.testing.assert_array_equal(chunk.timestamps, [3.0, 4.0])
    assert source.quality.take()[0] == {"buffer_overflow": 3, "unknown_topic": 1}
