"""The MQTT bridge's storing of what devices publish, and the broker accounts the hub keeps;
no broker needed (tests/integration/test_mqtt_transport.py has one)."""

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import event, select

from edgestack.hub import HubSettings
from edgestack.hub.bridge import Bridge
from edgestack.hub.broker import ACL_FILE, PASSWORD_FILE, acl, write_accounts
from edgestack.hub.context import HubContext
from edgestack.hub.store import accounts, devices
from edgestack.hub.store.tables import DeviceRow, EventRow, TelemetryRow
from edgestack.mqttwire import MAX_PAYLOAD_BYTES, device_topic, encode
from edgestack.protocol import PROTOCOL, EnrolRequest, ReportedState

from .factories import ADMIN_TOKEN, ENROL_TOKEN, HARDWARE, count, event_batch, telemetry_batch

SPOKEN = str(PROTOCOL)
# Made by `mosquitto_passwd -b passwd alice secret`.
MOSQUITTO_MADE = (
    "$7$101$m5bfrvt+bv04ZZKP$P7b4q0ULYieVKdDy5mcyR1vYgrk/YtmmpeM34cnDPdnZxMttG0SgFDJ/ar/NRFJl"
    "+LrhfitZFk/vwuhM8lFNhA=="
)


@pytest.fixture
def broker_settings(tmp_path: Path) -> HubSettings:
    return HubSettings(
        data_dir=tmp_path / "hub",
        admin_token=SecretStr(ADMIN_TOKEN),
        enrol_token=SecretStr(ENROL_TOKEN),
        broker_url="mqtt://127.0.0.1:1",
        broker_password=SecretStr("hub-secret"),
        broker_accounts=tmp_path / "accounts",
    )


@pytest.fixture
def opened(broker_settings: HubSettings) -> Iterator[HubContext]:
    hub = HubContext(broker_settings)
    hub.open_files()
    yield hub
    hub.close()


def _enrol(hub: HubContext, device_id: str) -> str:
    request = EnrolRequest(device_id=device_id, enrol_token=ENROL_TOKEN, hardware=HARDWARE)
    with hub.db.writer() as session:
        token = devices.enrol(session, request)
        session.commit()
    return token


def test_a_batch_published_again_is_stored_once(opened: HubContext) -> None:
    _enrol(opened, "motor-1")
    bridge = Bridge(opened)
    payload = encode("telemetry", telemetry_batch())

    first = bridge.store(device_topic("motor-1", "telemetry"), payload, SPOKEN)
    again = bridge.store(device_topic("motor-1", "telemetry"), payload, SPOKEN)

    assert (first, again) == ("stored", "duplicate")
    assert count(opened, TelemetryRow) == 1


def test_events_and_reported_state_go_where_the_http_routes_put_them(
    opened: HubContext,
) -> None:
    _enrol(opened, "motor-1")
    bridge = Bridge(opened)
    state = ReportedState(desired_version=0, status="idle", hardware=HARDWARE)

    bridge.store(device_topic("motor-1", "events"), encode("events", event_batch(3)), SPOKEN)
    bridge.store(device_topic("motor-1", "reported"), encode("reported", state), SPOKEN)

    assert count(opened, EventRow) >= 3
    with opened.db.session() as session:
        assert devices.view(session, "motor-1").reported == state


@pytest.mark.parametrize(
    ("topic", "payload", "protocol", "reason"),
    [
        (device_topic("motor-1", "telemetry"), b"{not json", SPOKEN, "invalid"),
        (device_topic("motor-1", "telemetry"), b"\x1f\x8bnot gzip", SPOKEN, "encoding"),
        (device_topic("motor-1", "telemetry"), b" " * (MAX_PAYLOAD_BYTES + 1), SPOKEN, "size"),
        (device_topic("motor-1", "telemetry"), None, "1000", "protocol"),
        (device_topic("motor-1", "telemetry"), None, None, "protocol"),
        (device_topic("motor-1", "desired"), None, SPOKEN, "topic"),
        ("edgestack/devices/motor-1", None, SPOKEN, "topic"),
        (device_topic("stranger", "telemetry"), None, SPOKEN, "unknown_device"),
    ],
)
def test_a_bad_message_is_counted_and_never_stored(
    opened: HubContext, topic: str, payload: bytes | None, protocol: str | None, reason: str
) -> None:
    _enrol(opened, "motor-1")
    bridge = Bridge(opened)
    good = gzip.compress(telemetry_batch().model_dump_json().encode())

    outcome = bridge.store(topic, good if payload is None else payload, protocol)

    assert outcome == reason
    assert bridge.counts == {reason: 1}
    assert count(opened, TelemetryRow) == 0


def test_a_known_device_whose_message_is_refused_is_told_in_an_event_once_a_minute(
    opened: HubContext,
) -> None:
    _enrol(opened, "motor-1")
    bridge = Bridge(opened)
    before = count(opened, EventRow)

    bridge.store(device_topic("motor-1", "telemetry"), b"{not json", SPOKEN)
    bridge.store(device_topic("motor-1", "events"), b"[]", SPOKEN)

    with opened.db.session() as session:
        told = session.scalars(select(EventRow).where(EventRow.id > before)).all()
    assert [(row.device_id, row.event["kind"]) for row in told] == [("motor-1", "error")]
    assert "edgestack/devices/motor-1/telemetry" in told[0].event["message"]


def test_the_broker_password_is_the_device_token_hashed_as_mosquitto_does(
    opened: HubContext,
) -> None:
    token = _enrol(opened, "motor-1")
    again = _enrol(opened, "motor-1")

    with opened.db.session() as session:
        hashed = session.get(DeviceRow, "motor-1").broker_hash  # type: ignore[union-attr]
        listed = accounts.listed(session)

    assert hashed is not None and listed == [("motor-1", hashed)]
    assert accounts.verify(again, hashed)
    assert not accounts.verify(token, hashed)  # enrolling again revoked the old token
    assert accounts.verify("secret", MOSQUITTO_MADE)
    assert not accounts.verify("Secret", MOSQUITTO_MADE)


def test_the_account_files_hold_the_hub_and_each_device_and_devices_only_their_topics(
    broker_settings: HubSettings, tmp_path: Path
) -> None:
    folder = tmp_path / "accounts"

    write_accounts(folder, broker_settings, [("motor-1", "$7$101$a$b")])

    users = dict(line.split(":", 1) for line in (folder / PASSWORD_FILE).read_text().split())
    assert users["motor-1"] == "$7$101$a$b"
    assert accounts.verify("hub-secret", users["edgestack_hub"])
    assert (folder / ACL_FILE).read_text() == acl("edgestack_hub")
    assert "pattern write edgestack/devices/%u/telemetry" in acl("edgestack_hub")
    assert "pattern read edgestack/devices/%u/desired" in acl("edgestack_hub")


@pytest.mark.parametrize("user", ["motor-1", "edge hub"])
def test_a_hub_user_name_a_device_could_enrol_under_is_refused(user: str) -> None:
    with pytest.raises(ValueError, match="broker_user"):
        HubSettings(broker_user=user)


def test_a_message_the_hub_fails_on_is_dropped_logged_and_holds_up_nothing_behind_it(
    opened: HubContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    _enrol(opened, "motor-1")
    bridge = Bridge(opened)
    state = ReportedState(desired_version=0, status="idle", hardware=HARDWARE)

    def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("edgestack.hub.store.telemetry.ingest", broken)
    failed = bridge.store(
        device_topic("motor-1", "telemetry"), encode("telemetry", telemetry_batch()), SPOKEN
    )
    behind = bridge.store(device_topic("motor-1", "reported"), encode("reported", state), SPOKEN)

    assert (failed, behind) == ("failed", "stored")


def test_a_production_hub_with_a_broker_refuses_the_development_broker_password() -> None:
    secret = "s" * 40
    with pytest.raises(ValueError, match="EDGESTACK_HUB_BROKER_PASSWORD"):
        HubSettings(
            environment="production",
            admin_token=SecretStr(secret),
            enrol_token=SecretStr(secret[::-1] + "x"),
            broker_url="mqtt://broker:1883",
        )


def test_messages_taken_together_are_stored_together_and_a_refused_one_leaves_the_rest(
    opened: HubContext,
) -> None:
    _enrol(opened, "motor-1")
    bridge = Bridge(opened)
    batch = encode("telemetry", telemetry_batch())
    forged = event_batch(1)
    forged.events[0].kind = "device_enrolled"  # the hub's word, which a device may not send
    topic = device_topic("motor-1", "telemetry")

    outcomes = bridge.store_all(
        [
            (topic, batch, SPOKEN),
            (device_topic("motor-1", "events"), encode("events", forged), SPOKEN),
            (topic, batch, SPOKEN),
            (topic, encode("telemetry", telemetry_batch(2)), SPOKEN),
        ]
    )

    assert outcomes == ["stored", "refused", "duplicate", "stored"]
    assert count(opened, TelemetryRow) == 2
    with opened.db.session() as session:
        kinds = [row.event["kind"] for row in session.scalars(select(EventRow))]
    assert kinds == ["error"]  # the device is told; nothing it forged is stored


def test_telemetry_taken_together_is_written_in_one_statement_as_the_http_routes_group(
    opened: HubContext,
) -> None:
    _enrol(opened, "motor-1")
    _enrol(opened, "motor-2")
    bridge = Bridge(opened)
    inserts: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO TELEMETRY"):
            inserts.append(statement)

    event.listen(opened.db.engine, "before_cursor_execute", seen)
    try:
        outcomes = bridge.store_all(
            [
                (device_topic(device_id, "telemetry"), encode("telemetry", batch), SPOKEN)
                for device_id in ("motor-1", "motor-2")
                for batch in (telemetry_batch(1), telemetry_batch(2))
            ]
        )
    finally:
        event.remove(opened.db.engine, "before_cursor_execute", seen)

    assert outcomes == ["stored"] * 4
    assert count(opened, TelemetryRow) == 4
    # One executemany for the four, not a statement a message.
    assert len(inserts) == 1
