"""Retention: telemetry past its age rolled up, then removed with old events, unlabelled
windows and batch ids, in bounded transactions, as a step of the controller; what the hub
shows of a device and its accuracy unchanged by it."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr, ValidationError
from sqlalchemy import event, select, update
from sqlalchemy.orm import InstrumentedAttribute
from typer.testing import CliRunner

from edgestack.bundle import Calibration
from edgestack.cli import app
from edgestack.hub import HubSettings, datadir
from edgestack.hub import retention as hub_retention
from edgestack.hub.context import HubContext
from edgestack.hub.controller import Controller
from edgestack.hub.store import Database, batches, devices, events, telemetry, utcnow
from edgestack.hub.store.db import sqlite_url
from edgestack.hub.store.tables import (
    EventRow,
    ReceivedBatchRow,
    RetentionTotalRow,
    ReviewWindowRow,
    SampleRow,
    TelemetryRollupRow,
    TelemetryRow,
)
from edgestack.protocol import (
    EnrolRequest,
    MonitorReport,
    ReviewWindow,
    TelemetryBatch,
    WindowBatch,
)

from .factories import (
    ADMIN,
    ADMIN_TOKEN,
    ENROL_TOKEN,
    HARDWARE,
    SPEC,
    Device,
    collecting,
    count,
    event_batch,
    registered,
    sample_batch,
    telemetry_batch,
)

pytestmark = pytest.mark.anyio

CALIBRATION = Calibration(accuracy=[0.5] * 5 + [0.6, 0.7, 0.8, 0.9, 1.0], rows=[10] * 10)
T0 = datetime(2025, 1, 1, tzinfo=UTC)  # telemetry_batch(seq) covers T0 + 5 (seq - 1) .. 5 seq s


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> HubSettings:
    # Off in the controller: each test runs retention itself, at the time it says.
    return HubSettings(
        data_dir=tmp_path / "hub",
        database_url=database_url,
        admin_token=SecretStr(ADMIN_TOKEN),
        enrol_token=SecretStr(ENROL_TOKEN),
        retention=False,
        retain_telemetry_days=7,
        retain_events_days=30,
        retain_windows_days=30,
        retain_batch_ids_days=90,
    )


def age(hub: HubContext, column: InstrumentedAttribute[datetime], days: float, *ids: int) -> None:
    """Make the rows `ids` of `column`'s table (every row when none) `days` old."""
    table = column.class_
    with hub.db.writer() as session:
        query = update(table).values({column.key: utcnow() - timedelta(days=days)})
        if ids:
            query = query.where(table.id.in_(ids))
        session.execute(query)
        session.commit()


def ids(hub: HubContext, column: InstrumentedAttribute[int]) -> list[int]:
    with hub.db.session() as session:
        return list(session.scalars(select(column).order_by(column)))


async def send(client: httpx.AsyncClient, device: Device, *batches: TelemetryBatch) -> list[Any]:
    acks = []
    for batch in batches:
        url = f"/api/v1/devices/{device.device_id}/telemetry"
        response = await client.post(url, content=batch.model_dump_json(), headers=device.auth)
        assert response.status_code == 200, response.text
        acks.append(response.json())
    return acks


async def register(client: httpx.AsyncClient) -> str:
    return await registered(client, calibration=CALIBRATION)


def monitored(seq: int, digest: str, bin_: int, **changes: object) -> TelemetryBatch:
    """A batch of 10 windows of `digest`, all with a confidence in bin `bin_`."""
    report = MonitorReport(confidence=[10 if i == bin_ else 0 for i in range(10)])
    return telemetry_batch(seq, bundle_digest=digest, monitoring=report, **changes)


def rollups(hub: HubContext) -> list[TelemetryRollupRow]:
    with hub.db.session() as session:
        query = select(TelemetryRollupRow).order_by(TelemetryRollupRow.hour)
        return list(session.scalars(query))


async def test_telemetry_past_its_age_is_rolled_up_by_hour_and_removed_and_newer_kept(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    sent = [
        telemetry_batch(
            seq,
            windows=seq * 10,
            predictions={"normal": seq, "worn": 1},
            raw_bytes=1000 * seq,
            uplink_bytes=seq,
            failed_chunks=seq - 1,
            latency_ms_p95=float(seq),
        )
        for seq in range(1, 5)
    ]
    await send(client, device, *sent)
    first_id, second_id, third_id, _ = ids(hub, TelemetryRow.id)
    # The first two received in one hour eight days ago, the third two hours before them.
    age(hub, TelemetryRow.received_at, 8, first_id, second_id)
    age(hub, TelemetryRow.received_at, 8 + 2 / 24, third_id)

    removed = hub_retention.run(hub.db, hub.settings)
    listed = (await client.get("/api/v1/devices/motor-1/telemetry", headers=ADMIN)).json()

    assert removed["telemetry_batches"] == 3
    assert [row["batch"]["seq"] for row in listed] == [4]
    earlier, later = rollups(hub)
    assert later.hour - earlier.hour in (timedelta(hours=2), timedelta(hours=3))
    assert (later.device_id, later.bundle_digest, later.latency_ms_p95_max) == ("motor-1", "", 2.0)
    assert (later.batches, later.windows, later.raw_bytes, later.uplink_bytes) == (2, 30, 3000, 3)
    assert (later.predictions, later.failed_chunks) == ({"normal": 3, "worn": 2}, 1)
    assert (earlier.batches, earlier.windows, earlier.predictions) == (
        1,
        30,
        {"normal": 3, "worn": 1},
    )


async def test_roll_ups_are_made_in_the_order_batches_came_whatever_order_rows_are_stored_in(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    await send(client, device, *(telemetry_batch(seq) for seq in range(1, 5)))
    first_id, second_id, third_id, _ = ids(hub, TelemetryRow.id)
    # Aged newest first: PostgreSQL writes each updated row after the others, so a scan
    # without an order meets them the other way round.
    for days, row_id in ((8, third_id), (8 + 2 / 24, second_id), (8 + 4 / 24, first_id)):
        age(hub, TelemetryRow.received_at, days, row_id)

    hub_retention.run(hub.db, hub.settings)

    with hub.db.session() as session:
        by_id = session.scalars(select(TelemetryRollupRow.hour).order_by(TelemetryRollupRow.id))
        hours = list(by_id)
    # Roll-ups are removed oldest id first, so a newer hour with an older id holds them back.
    assert len(hours) == 3 and hours == sorted(hours)


async def test_retention_leaves_accuracy_and_the_devices_totals_as_they_were(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    digest = await register(client)
    sent = [
        monitored(1, digest, 9, predictions={"normal": 9, "worn": 1}),
        monitored(2, digest, 4, predictions={"normal": 2, "worn": 8}),
        monitored(3, digest, 7, predictions={"normal": 10}),
        monitored(
            4, digest, 9, start=T0 + timedelta(hours=3), end=T0 + timedelta(hours=3, seconds=5)
        ),
    ]
    await send(client, device, *sent)
    span = {
        "device_id": "motor-1",
        "start": T0.isoformat(),
        "end": (T0 + timedelta(seconds=10)).isoformat(),
        "label": "normal",
    }
    response = await client.post(
        "/api/v1/feedback", json={"batch_id": str(uuid.uuid4()), "spans": [span]}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    first_id, second_id, third_id, _ = ids(hub, TelemetryRow.id)
    age(hub, TelemetryRow.received_at, 8, first_id, second_id)
    age(hub, TelemetryRow.received_at, 8 + 2 / 24, third_id)
    before_accuracy = (await client.get("/api/v1/accuracy", headers=ADMIN)).json()
    before_device = (await client.get("/api/v1/devices/motor-1", headers=ADMIN)).json()

    hub_retention.run(hub.db, hub.settings)
    after_accuracy = (await client.get("/api/v1/accuracy", headers=ADMIN)).json()
    after_device = (await client.get("/api/v1/devices/motor-1", headers=ADMIN)).json()

    assert count(hub, TelemetryRow) == 1 and len(rollups(hub)) == 2
    assert before_accuracy[0]["labelled_windows"] == 20  # the span holds batches 1 and 2
    assert after_accuracy == before_accuracy
    assert after_device["telemetry"] == before_device["telemetry"]


async def test_a_batch_resent_after_retention_removed_its_row_is_taken_once(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    first, second = telemetry_batch(1), telemetry_batch(2)
    await send(client, device, first, second)
    age(hub, TelemetryRow.received_at, 8)
    stored = ids(hub, TelemetryRow.id)
    hub_retention.run(hub.db, hub.settings)
    totals = (await client.get("/api/v1/devices/motor-1", headers=ADMIN)).json()["telemetry"]

    again = await send(client, device, first, second, telemetry_batch(3))

    assert [ack["duplicate"] for ack in again] == [True, True, False]
    assert ids(hub, TelemetryRow.id) == [stored[1], stored[1] + 1]  # ids only grow
    after = (await client.get("/api/v1/devices/motor-1", headers=ADMIN)).json()["telemetry"]
    assert (after["batches"], after["windows"]) == (totals["batches"] + 1, totals["windows"] + 10)


async def test_events_windows_and_batch_ids_past_their_age_go_and_samples_stay(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    for _ in range(3):
        response = await client.post(
            "/api/v1/devices/motor-1/events",
            content=event_batch(2).model_dump_json(),
            headers=device.auth,
        )
        assert response.status_code == 200, response.text
    await collecting(client, "motor-1")
    response = await client.post(
        "/api/v1/devices/motor-1/samples",
        content=sample_batch(2, 2).model_dump_json(),
        headers=device.auth,
    )
    assert response.status_code == 200, response.text
    await client.post("/api/v1/devices/motor-1/window-requests", json={"count": 3}, headers=ADMIN)
    windows = WindowBatch(
        batch_id=uuid.uuid4(),
        request_id=1,
        spec=SPEC,
        bundle_digest="ab" * 32,
        windows=[
            ReviewWindow(at=T0, features=[float(i), 1.0], predicted="normal", confidence=0.5)
            for i in range(3)
        ],
    )
    response = await client.post(
        "/api/v1/devices/motor-1/windows", content=windows.model_dump_json(), headers=device.auth
    )
    assert response.status_code == 200, response.text
    window_ids = ids(hub, ReviewWindowRow.id)
    labelled = {"ids": window_ids[:1], "label": "worn", "dataset": "review"}
    response = await client.post("/api/v1/windows/label", json=labelled, headers=ADMIN)
    assert response.status_code == 200, response.text
    event_ids = ids(hub, EventRow.id)
    age(hub, EventRow.received_at, 31, *event_ids[:4])
    age(hub, ReviewWindowRow.received_at, 31)
    batch_ids = ids(hub, ReceivedBatchRow.id)
    age(hub, ReceivedBatchRow.received_at, 91, *batch_ids[:2])
    samples = count(hub, SampleRow)

    removed = hub_retention.run(hub.db, hub.settings)

    assert removed["events"] == 4 and ids(hub, EventRow.id)[:-1] == event_ids[4:]
    with hub.db.session() as session:
        said = session.scalars(select(EventRow).order_by(EventRow.id.desc()).limit(1)).one()
    assert said.event["message"] == (
        "retention: removed 4 events, 1 review_windows, 2 received_batches"
    )
    # The labelled window stays, and so does the newest, whose id the next one's follows.
    assert removed["review_windows"] == 1
    assert ids(hub, ReviewWindowRow.id) == [window_ids[0], window_ids[2]]
    assert removed["received_batches"] == 2
    assert ids(hub, ReceivedBatchRow.id) == batch_ids[2:]
    assert samples == 3 and count(hub, SampleRow) == samples


async def test_a_second_run_changes_nothing(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    await send(client, device, *(telemetry_batch(seq) for seq in range(1, 6)))
    age(hub, TelemetryRow.received_at, 8)
    hub_retention.run(hub.db, hub.settings)
    kept = [(r.hour, r.batches, r.windows, r.predictions) for r in rollups(hub)]
    event_count = count(hub, EventRow)

    again = hub_retention.run(hub.db, hub.settings)

    assert set(again.values()) == {0}
    assert [(r.hour, r.batches, r.windows, r.predictions) for r in rollups(hub)] == kept
    assert [kept_row[1:] for kept_row in kept] == [(4, 40, {"normal": 36, "worn": 4})]
    assert count(hub, EventRow) == event_count  # a run that did nothing says nothing


@pytest.fixture
def deletes(hub: HubContext) -> Iterator[list[tuple[str, int]]]:
    """The table and row count of each DELETE the hub's database runs."""
    seen: list[tuple[str, int]] = []

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("DELETE FROM"):
            seen.append((statement.split()[2], cursor.rowcount))

    engine = hub.db.engine
    event.listen(engine, "after_cursor_execute", after)
    yield seen
    event.remove(engine, "after_cursor_execute", after)


async def test_no_transaction_takes_more_rows_than_the_batch_size(
    client: httpx.AsyncClient,
    hub: HubContext,
    device: Device,
    deletes: list[tuple[str, int]],
) -> None:
    await send(client, device, *(telemetry_batch(seq) for seq in range(1, 12)))
    age(hub, TelemetryRow.received_at, 8)
    settings = hub.settings.model_copy(update={"retention_batch_rows": 3})

    removed = hub_retention.run(hub.db, settings)

    telemetry_deletes = [n for table, n in deletes if table == "telemetry_batches"]
    assert removed is not None and removed["telemetry_batches"] == 10
    assert count(hub, TelemetryRow) == 1  # the newest, however old
    assert telemetry_deletes == [3, 3, 3, 1]
    assert rollups(hub)[0].batches == 10


def said(hub: HubContext) -> list[str]:
    """The messages of the hub's retention_run events, oldest first."""
    with hub.db.session() as session:
        rows = session.scalars(select(EventRow).order_by(EventRow.id))
        return [row.event["message"] for row in rows if row.event["kind"] == "retention_run"]


async def test_a_run_goes_on_over_slices_and_says_what_it_did_once_it_ends(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    await send(client, device, *(telemetry_batch(seq) for seq in range(1, 12)))
    age(hub, TelemetryRow.received_at, 8)
    settings = hub.settings.model_copy(update={"retention": True, "retention_batch_rows": 3})
    now = utcnow()
    hub_retention.run_if_due(hub.db, settings, now - timedelta(hours=2))  # starts the clock

    finished, left, told = [], [], []
    for _ in range(5):
        finished.append(hub_retention.run_if_due(hub.db, settings, now, slice_s=0))
        left.append(count(hub, TelemetryRow))
        told.append(len(said(hub)))

    assert finished == [False, False, False, True, False]
    assert left == [8, 5, 2, 1, 1]
    assert told == [0, 0, 0, 1, 1]
    assert said(hub) == ["retention: rolled up 10 telemetry batches by device and hour"]


async def test_the_controller_runs_retention_when_due_and_says_what_it_did(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    hub.settings = hub.settings.model_copy(update={"retention": True, "retention_every_s": 600})
    controller = Controller(hub, tick_s=1)
    await send(client, device, *(telemetry_batch(seq) for seq in (1, 2, 3)))
    age(hub, TelemetryRow.received_at, 8)
    start = utcnow()

    controller.tick()  # the first tick on this database starts the clock
    first = count(hub, TelemetryRow)
    ran = hub_retention.run_if_due(hub.db, hub.settings, start + timedelta(seconds=601))
    await send(client, device, telemetry_batch(4))
    age(hub, TelemetryRow.received_at, 8)
    batch_four = ids(hub, TelemetryRow.id)[-1]
    controller.tick()  # it ran 601 s "later" than now: not due
    stays = count(hub, TelemetryRow)
    later = hub_retention.run_if_due(hub.db, hub.settings, start + timedelta(seconds=1202))

    assert (first, ran, stays, later) == (3, True, 2, True)
    assert ids(hub, TelemetryRow.id)[-1] == batch_four
    said = (await client.get("/api/v1/events?kind=retention_run", headers=ADMIN)).json()
    assert [e["event"]["message"] for e in said] == [
        "retention: rolled up 2 telemetry batches by device and hour",
        "retention: rolled up 1 telemetry batches by device and hour",
    ]
    metrics = (await client.get("/metrics", headers=ADMIN)).text
    samples = {
        (s.name, s.labels.get("table"), s.labels.get("action")): s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
        if s.name.startswith("edgestack_retention")
    }
    assert samples[("edgestack_retention_rows_total", "telemetry_batches", "rolled_up")] == 3
    assert samples[("edgestack_retention_rows_total", "events", "removed")] == 0
    assert samples[("edgestack_retention_last_run_timestamp_seconds", None, None)] > 0


def test_batch_ids_kept_shorter_than_what_they_guard_are_refused() -> None:
    with pytest.raises(ValidationError, match="EDGESTACK_HUB_RETAIN_BATCH_IDS_DAYS to at least 30"):
        HubSettings(retain_events_days=30, retain_batch_ids_days=10)


async def test_rows_stop_growing_under_a_steady_feed(
    hub: HubContext, device: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = hub.settings.model_copy(
        update={
            "retention": True,
            "retain_telemetry_days": 1,
            "retain_rollups_days": 2,
            "retain_events_days": 1,
            "retain_batch_ids_days": 2,
            "retention_every_s": 6 * 3600,
        }
    )
    clock = [utcnow()]
    for module in (telemetry, events, batches):
        monkeypatch.setattr(module, "utcnow", lambda: clock[0])
    tables = (TelemetryRow, TelemetryRollupRow, EventRow, ReceivedBatchRow, RetentionTotalRow)
    daily: list[list[int]] = []

    # Six days of a telemetry and an event batch every half hour, rows counted at each day's end.
    for seq in range(1, 6 * 48 + 1):
        with hub.db.writer() as session:
            telemetry.ingest(session, device.device_id, telemetry_batch(seq))
            events.ingest(session, device.device_id, event_batch(1))
            session.commit()
        clock[0] += timedelta(minutes=30)
        hub_retention.run_if_due(hub.db, settings, clock[0])
        if seq % 48 == 0:
            daily.append([count(hub, table) for table in tables])

    assert daily[0] < daily[3], "the first day is before anything is old enough to go"
    assert daily[3] == daily[4] == daily[5]
    telemetry_rows, rollup_rows = daily[5][:2]
    assert telemetry_rows <= 48 + 12 and rollup_rows <= 2 * 24 + 6


def hub_with_old_telemetry(data_dir: Path) -> None:
    """A data dir whose device sent two batches, the first eight days ago."""
    data_dir.mkdir(parents=True)
    db = Database(sqlite_url(data_dir / datadir.DATABASE))
    with db.writer() as session:
        request = EnrolRequest(device_id="motor-1", enrol_token="t", hardware=HARDWARE)
        devices.enrol(session, request)
        for seq in (1, 2):
            telemetry.ingest(session, "motor-1", telemetry_batch(seq))
        session.execute(
            update(TelemetryRow)
            .where(TelemetryRow.seq == 1)
            .values(received_at=utcnow() - timedelta(days=8))
        )
        session.commit()
    db.close()


def test_hub_retain_rolls_up_what_is_past_its_age_unless_a_hub_holds_the_data_dir(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "hub"
    hub_with_old_telemetry(data_dir)
    command = ["hub", "retain", "--data-dir", str(data_dir)]

    with datadir.hold(data_dir, "the hub of process 1"):
        refused = CliRunner().invoke(app, command)
    done = CliRunner().invoke(app, command)
    again = CliRunner().invoke(app, command)

    assert refused.exit_code == 1
    assert "held by the hub of process 1" in " ".join(refused.output.split())
    assert done.exit_code == 0, done.output
    assert "telemetry_batches: 1 rolled up and removed" in done.output
    assert "events: 0 removed" in done.output
    assert "telemetry_batches: 0 rolled up and removed" in again.output
