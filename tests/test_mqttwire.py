import contextlib
import gzip
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgestack.mqttwire import (
    MAX_JSON_BYTES,
    MAX_PAYLOAD_BYTES,
    BadMessage,
    acl_patterns,
    broker_address,
    decode,
    decode_desired,
    device_topic,
    encode,
    shared_subscription,
)
from edgestack.protocol import (
    PROTOCOL,
    DesiredState,
    Event,
    EventBatch,
    Hardware,
    ReportedState,
    TelemetryBatch,
)

START = datetime(2025, 1, 1, tzinfo=UTC)
BATCH = TelemetryBatch(
    batch_id=uuid.uuid4(), seq=3, start=START, end=START, windows=4, raw_bytes=1, uplink_bytes=1
)
EVENTS = EventBatch(
    batch_id=uuid.uuid4(),
    events=[
        Event(
            event_id=uuid.uuid4(), at=START, kind="alarm_raised", severity="warning", message="hot"
        )
    ],
)
REPORTED = ReportedState(
    desired_version=2,
    status="idle",
    hardware=Hardware(cores=1, ram_mb=1, arch="x86_64", providers=[]),
)
SPOKEN = str(PROTOCOL)


@pytest.mark.parametrize(
    ("kind", "message"), [("telemetry", BATCH), ("events", EVENTS), ("reported", REPORTED)]
)
def test_what_a_device_publishes_reads_back_as_it_was_sent(kind: str, message: object) -> None:
    topic = device_topic("motor-1", kind)  # type: ignore[arg-type]  # each Kind in turn

    uplink = decode(topic, encode(kind, message), SPOKEN)  # type: ignore[arg-type]

    assert (uplink.device_id, uplink.kind, uplink.message) == ("motor-1", kind, message)


def test_batches_travel_compressed_and_the_hub_reads_them_as_the_outbox_holds_them() -> None:
    outbox_body = gzip.compress(BATCH.model_dump_json().encode())

    assert encode("telemetry", BATCH)[:2] == b"\x1f\x8b"
    assert decode(device_topic("m-1", "telemetry"), outbox_body, SPOKEN).message == BATCH


def test_a_desired_state_reads_back_without_its_nulls() -> None:
    state = DesiredState(version=4, telemetry_interval_s=1.5)

    payload = encode("desired", state)

    assert b"null" not in payload
    assert decode_desired(payload, SPOKEN) == state


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("edgestack/devices/motor-1/desired", "topic"),
        ("edgestack/devices/motor-1/samples", "topic"),
        ("edgestack/devices/Motor_1/telemetry", "topic"),
        ("edgestack/devices/+/telemetry", "topic"),
        ("edgestack/devices/motor-1/telemetry/x", "topic"),
        ("other/devices/motor-1/telemetry", "topic"),
    ],
)
def test_a_topic_outside_the_layout_is_refused(topic: str, reason: str) -> None:
    with pytest.raises(BadMessage) as refused:
        decode(topic, encode("telemetry", BATCH), SPOKEN)

    assert refused.value.reason == reason


@pytest.mark.parametrize("protocol", [None, "", "0", "99", "2.0", "9" * 5000])
def test_a_message_that_states_no_spoken_protocol_is_refused_naming_the_property(
    protocol: str | None,
) -> None:
    with pytest.raises(BadMessage, match=r"edgestack-protocol|not spoken") as refused:
        decode(device_topic("m-1", "telemetry"), encode("telemetry", BATCH), protocol)

    assert refused.value.reason == "protocol"


def test_a_payload_too_big_or_inflating_past_the_cap_is_refused() -> None:
    bomb = gzip.compress(b" " * (MAX_JSON_BYTES + 1))

    with pytest.raises(BadMessage) as big:
        decode(device_topic("m-1", "events"), b"{" * (MAX_PAYLOAD_BYTES + 1), SPOKEN)
    with pytest.raises(BadMessage) as inflated:
        decode(device_topic("m-1", "events"), bomb, SPOKEN)

    assert (big.value.reason, inflated.value.reason) == ("size", "size")


def test_a_message_of_another_kind_is_refused_naming_the_field() -> None:
    with pytest.raises(BadMessage, match="seq") as refused:
        decode(device_topic("m-1", "telemetry"), encode("events", EVENTS), SPOKEN)

    assert refused.value.reason == "invalid"


@given(topic=st.text(max_size=80), payload=st.binary(max_size=2000), protocol=st.text(max_size=8))
def test_the_decoder_raises_nothing_but_bad_message(
    topic: str, payload: bytes, protocol: str
) -> None:
    for stated in (protocol, SPOKEN):
        for where in (topic, device_topic("m-1", "telemetry")):
            try:
                decode(where, payload, stated)
            except BadMessage as exc:
                assert exc.reason in {"topic", "size", "protocol", "encoding", "invalid"}


@given(payload=st.binary(max_size=500).map(lambda b: gzip.compress(b) if b[:1] == b"g" else b))
def test_the_desired_decoder_raises_nothing_but_bad_message(payload: bytes) -> None:
    with contextlib.suppress(BadMessage):
        decode_desired(payload, SPOKEN)


def test_replicas_share_one_subscription_group_and_devices_only_their_own_topics() -> None:
    assert shared_subscription("telemetry") == "$share/edgestack-hub/edgestack/devices/+/telemetry"
    assert acl_patterns() == [
        ("write", "edgestack/devices/{user}/telemetry"),
        ("write", "edgestack/devices/{user}/events"),
        ("write", "edgestack/devices/{user}/reported"),
        ("read", "edgestack/devices/{user}/desired"),
    ]


@pytest.mark.parametrize(
    ("url", "address"),
    [("mqtt://broker:1884", ("broker", 1884)), ("mqtt://10.0.0.2", ("10.0.0.2", 1883))],
)
def test_a_broker_address_is_read_from_its_url(url: str, address: tuple[str, int]) -> None:
    assert broker_address(url) == address


@pytest.mark.parametrize("url", ["http://broker:1883", "mqtt://", "mqtt://b:x", "mqtt://b/t"])
def test_anything_but_a_broker_url_is_refused_naming_the_form(url: str) -> None:
    with pytest.raises(ValueError, match="mqtt://host:port"):
        broker_address(url)
