"""Devices' writes stored many to a transaction: each answered once committed, one that
fails failing alone, alerts moved on as one batch to a transaction moves them."""

import asyncio
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from edgestack.hub.context import HubContext
from edgestack.hub.errors import NotFound
from edgestack.hub.store import alerts, feedback, telemetry
from edgestack.hub.store import devices as stored
from edgestack.hub.store.tables import AlertRow, AlertStreakRow, EventRow, TelemetryRow
from edgestack.protocol import (
    AlertRule,
    AlertRules,
    DesiredState,
    FeedbackBatch,
    FeedbackSpan,
    IngestAck,
    MonitorReport,
    ReportedState,
    TelemetryBatch,
    TelemetryTotals,
)

from .factories import (
    HARDWARE,
    SHIFTED,
    STEADY,
    Enrol,
    count,
    monitored_batch,
    registered_with_reference,
    telemetry_batch,
)

pytestmark = pytest.mark.anyio


async def test_batches_sent_at_once_are_each_stored_and_acked(
    hub: HubContext, enrol: Enrol
) -> None:
    devices = [await enrol(f"motor-{n}") for n in range(4)]
    batches = {d.device_id: [telemetry_batch(seq) for seq in range(1, 11)] for d in devices}
    resent = batches["motor-0"][0]

    acks = await asyncio.gather(
        *(
            hub.writes.store(telemetry.ingest_many, (d, b))
            for d, sent in batches.items()
            for b in sent
        ),
        hub.writes.store(telemetry.ingest_many, ("motor-0", resent)),
    )

    assert sum(a.accepted for a in acks) == 40
    assert [a.duplicate for a in acks].count(True) == 1
    assert count(hub, TelemetryRow) == 40
    with hub.db.session() as session:
        totals = TelemetryTotals.model_validate(stored.get(session, "motor-3").telemetry)
    assert (totals.batches, totals.last_seq) == (10, 10)


async def test_a_batch_that_fails_fails_alone(hub: HubContext, enrol: Enrol) -> None:
    await enrol("motor-1")

    results = await asyncio.gather(
        *(
            hub.writes.store(telemetry.ingest_many, ("motor-1", telemetry_batch(seq)))
            for seq in range(1, 6)
        ),
        hub.writes.store(telemetry.ingest_many, ("motor-9", telemetry_batch(1))),
        return_exceptions=True,
    )

    assert isinstance(results[-1], NotFound)
    assert all(not isinstance(r, BaseException) and r.accepted for r in results[:-1])
    assert count(hub, TelemetryRow) == 5


def slow(seq: int, p99_ms: float) -> TelemetryBatch:
    return telemetry_batch(seq, bad_input={}, monitoring=MonitorReport(p99_ms=p99_ms))


def alerts_of(hub: HubContext, device_id: str) -> list[tuple[object, ...]]:
    """What a device's alerts, streaks and alert events say, without ids and times."""
    with hub.db.session() as session:
        raised = session.scalars(select(AlertRow).where(AlertRow.device_id == device_id))
        streaks = session.scalars(
            select(AlertStreakRow).where(AlertStreakRow.device_id == device_id)
        )
        said = session.scalars(
            select(EventRow.event["message"].as_string())
            .where(
                EventRow.device_id == device_id,
                EventRow.event["kind"].as_string().in_(["alert_raised", "alert_cleared"]),
            )
            .order_by(EventRow.id)
        )
        return [
            *sorted(
                (a.signal, a.first_value, a.worst_value, a.last_value, a.cleared_at is None)
                for a in raised
            ),
            *sorted((s.signal, s.batches) for s in streaks),
            *said,
        ]


async def test_a_group_moves_alerts_on_as_a_transaction_per_batch_does(
    hub: HubContext, enrol: Enrol
) -> None:
    await enrol("motor-1")
    await enrol("motor-2")
    with hub.db.writer() as session:
        rule = AlertRule(signal="p99_ms", raise_at=20, clear_at=10)
        alerts.set_rules(session, AlertRules(rules=[rule]))
        session.commit()
    # Raised at 30, cleared at 8, a streak of one left: each step within the one group.
    values = [25, 30, 50, 5, 8, 25]

    with hub.db.writer() as session:
        telemetry.ingest_many(
            session, [("motor-1", slow(seq, v)) for seq, v in enumerate(values, 1)]
        )
        session.commit()
    for seq, value in enumerate(values, 1):
        with hub.db.writer() as session:
            telemetry.ingest(session, "motor-2", slow(seq, value))
            session.commit()

    grouped, alone = alerts_of(hub, "motor-1"), alerts_of(hub, "motor-2")
    assert grouped == alone
    assert ("p99_ms", 30.0, 50.0, 8.0, False) in grouped
    assert ("p99_ms", 1) in grouped
    assert len(grouped) == 5  # an alert, two streaks (p99, bad input), raised, cleared


async def test_a_group_reads_the_labels_of_the_devices_that_have_some(
    hub: HubContext, enrol: Enrol
) -> None:
    await enrol("motor-1")
    await enrol("motor-2")
    # Every window of motor-1 was wrong, by its label; motor-2 has no label at all.
    spans = [
        FeedbackSpan(
            device_id="motor-1",
            start=datetime(2024, 1, 1, tzinfo=UTC),
            end=datetime(2026, 1, 1, tzinfo=UTC),
            label="broken",
        )
    ]
    with hub.db.writer() as session:
        feedback.ingest(session, FeedbackBatch(batch_id=uuid.uuid4(), spans=spans))
        session.commit()

    with hub.db.writer() as session:
        telemetry.ingest_many(
            session,
            [(device, telemetry_batch(seq)) for seq in (1, 2) for device in ("motor-1", "motor-2")],
        )
        session.commit()

    assert ("accuracy", 0.0, 0.0, 0.0, True) in alerts_of(hub, "motor-1")
    assert not any(
        isinstance(said, tuple) and said[0] == "accuracy" for said in alerts_of(hub, "motor-2")
    )


async def test_a_batch_twice_in_one_group_is_stored_once(hub: HubContext, enrol: Enrol) -> None:
    await enrol("motor-1")
    await enrol("motor-2")
    first, again = telemetry_batch(1), telemetry_batch(2)
    # The same id from another device is that device's own batch.
    other = telemetry_batch(1, batch_id=first.batch_id)
    with hub.db.writer() as session:
        telemetry.ingest(session, "motor-1", first)
        session.commit()

    with hub.db.writer() as session:
        acks = telemetry.ingest_many(
            session,
            [("motor-1", again), ("motor-1", first), ("motor-2", other), ("motor-1", again)],
        )
        session.commit()

    assert [a.duplicate for a in acks] == [False, True, False, True]
    assert count(hub, TelemetryRow) == 3


async def test_a_group_of_drift_batches_scores_drift_as_batches_sent_one_by_one(
    client: httpx.AsyncClient, hub: HubContext, enrol: Enrol
) -> None:
    digest = await registered_with_reference(client)
    await enrol("motor-1")
    await enrol("motor-2")
    sketches = [STEADY, STEADY, SHIFTED]
    sent = [
        TelemetryBatch.model_validate_json(monitored_batch(seq, digest, counts))
        for seq, counts in enumerate(sketches, 1)
    ]

    # Each batch's rolling drift reads the batches before it, in the same group too.
    with hub.db.writer() as session:
        telemetry.ingest_many(session, [("motor-1", batch) for batch in sent])
        session.commit()
    for batch in sent:
        with hub.db.writer() as session:
            telemetry.ingest(
                session, "motor-2", batch.model_copy(update={"batch_id": uuid.uuid4()})
            )
            session.commit()

    grouped, alone = totals_of(hub, "motor-1"), totals_of(hub, "motor-2")
    assert grouped.drift_windows == alone.drift_windows == 120
    assert grouped.drift_psi == alone.drift_psi is not None


async def test_a_twin_loaded_before_in_the_transaction_shows_the_totals_after(
    hub: HubContext, enrol: Enrol
) -> None:
    await enrol("motor-1")

    with hub.db.writer() as session:
        row = stored.get(session, "motor-1")
        telemetry.ingest(session, "motor-1", telemetry_batch(1))
        seen = TelemetryTotals.model_validate(row.telemetry).batches
        session.commit()

    assert seen == 1 and totals_of(hub, "motor-1").batches == 1


async def test_no_statement_of_a_group_reads_every_stored_batch(
    hub: HubContext, enrol: Enrol
) -> None:
    if hub.db.engine.dialect.name != "sqlite":
        pytest.skip("the plan asked of is SQLite's; PostgreSQL scans small tables whole anyway")
    await enrol("motor-1")
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(hub.db.engine, "before_cursor_execute", seen)
    try:
        with hub.db.writer() as session:
            telemetry.ingest_many(session, [("motor-1", telemetry_batch(seq)) for seq in (1, 2)])
            session.commit()
    finally:
        event.remove(hub.db.engine, "before_cursor_execute", seen)

    with hub.db.engine.connect() as conn:
        plans = [
            row[-1]
            for statement, parameters in statements
            for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        ]
    # A scan of the batches, growing with every one stored, once slowed each group down.
    assert statements and not [plan for plan in plans if plan.startswith("SCAN telemetry")]


def totals_of(hub: HubContext, device_id: str) -> TelemetryTotals:
    with hub.db.session() as session:
        return TelemetryTotals.model_validate(stored.get(session, device_id).telemetry)


async def test_writes_of_each_kind_queued_together_are_stored_and_answered_each(
    hub: HubContext, enrol: Enrol
) -> None:
    for n in range(3):
        await enrol(f"motor-{n}")
    with hub.db.session() as session:
        enrolled_seen = stored.get(session, "motor-2").last_seen
    running, failed = (
        ReportedState(desired_version=version, status=status, hardware=HARDWARE)
        for version, status in ((1, "running"), (2, "failed"))
    )

    answers = await asyncio.gather(
        hub.writes.store(stored.report_many, ("motor-0", running)),
        hub.writes.store(telemetry.ingest_many, ("motor-1", telemetry_batch(1))),
        hub.writes.store(stored.seen_many, "motor-2"),
        hub.writes.store(stored.report_many, ("motor-0", failed)),
        hub.writes.store(stored.report_many, ("motor-9", running)),
        hub.writes.store(stored.seen_many, "motor-9"),
        return_exceptions=True,
    )

    assert answers[0] == running and answers[3] == failed
    assert isinstance(answers[1], IngestAck) and answers[1].accepted == 1
    assert isinstance(answers[2], DesiredState) and answers[2].version == 0
    assert [type(a) for a in answers[4:]] == [NotFound, NotFound]
    with hub.db.session() as session:
        assert ReportedState.model_validate(stored.get(session, "motor-0").reported) == failed
        last_seen = stored.get(session, "motor-2").last_seen
    assert enrolled_seen is not None and last_seen is not None and last_seen > enrolled_seen


async def test_token_look_ups_queued_while_the_reader_is_busy_are_one_statement(
    hub: HubContext, enrol: Enrol
) -> None:
    held = {device_id: (await enrol(device_id)).token for device_id in ("motor-0", "motor-1")}
    busy, go_on = threading.Event(), threading.Event()
    calls: list[list[str]] = []

    def hold(_session: Session, items: Sequence[None]) -> list[None]:
        busy.set()
        go_on.wait(timeout=30)
        return [None for _ in items]

    def token_hashes(session: Session, device_ids: Sequence[str]) -> list[str | None]:
        calls.append(list(device_ids))
        return stored.token_hashes(session, device_ids)

    holding = asyncio.ensure_future(hub.reads.store(hold, None))
    await asyncio.to_thread(busy.wait, 30)
    asked = [
        asyncio.ensure_future(hub.reads.store(token_hashes, device_id))
        for device_id in ("motor-1", "motor-9", "motor-0", "motor-1")
    ]
    await asyncio.sleep(0.05)
    go_on.set()
    answers = await asyncio.gather(*asked)
    await holding

    assert calls == [["motor-1", "motor-9", "motor-0", "motor-1"]]
    assert answers == [
        stored.hash_token(held["motor-1"]),
        None,
        stored.hash_token(held["motor-0"]),
        stored.hash_token(held["motor-1"]),
    ]
