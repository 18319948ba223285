"""Retention: telemetry batches past their age rolled up per device, hour and bundle, then
removed; roll-ups, events, windows never labelled, and the ids of batches received removed
past theirs.

Each function handles at most `limit` rows, the oldest first, in the caller's transaction, so
a run is many short transactions and the hub keeps answering between them. Samples are the
training set and are never removed here: curation removes them, and frozen versions keep
theirs in their files.
"""

from collections.abc import Callable
from datetime import datetime
from itertools import takewhile

from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from edgestack.hub.store import feedback
from edgestack.hub.store.tables import (
    EventRow,
    ReceivedBatchRow,
    RetentionTotalRow,
    ReviewWindowRow,
    TelemetryRollupRow,
    TelemetryRow,
)
from edgestack.protocol import INT64_MAX, TelemetryBatch

__all__ = [
    "TABLES",
    "Step",
    "count",
    "finish",
    "last_run",
    "remove_batch_ids",
    "remove_events",
    "remove_rollups",
    "remove_windows",
    "roll_up",
    "totals",
]

TABLES = (
    "telemetry_batches",
    "telemetry_rollups",
    "events",
    "review_windows",
    "received_batches",
)
"""The tables retention shortens, in the order a run takes them."""

Step = Callable[[Session, datetime, int], int]
"""One step of a run: `(session, before, limit)` to the rows it took, at most `limit`."""

# The rows removed are not loaded in the session, so it has none to keep in step.
_BULK = {"synchronize_session": False}


def roll_up(session: Session, before: datetime, limit: int) -> int:
    """Roll the oldest telemetry batches received before `before`, at most `limit`, into
    their device's roll-up of the hour each was received and the bundle it ran, keep their
    ids as received batches, and remove them; how many. Hours are the hub's: a device's clock
    may be anything, and roll-ups are removed by their hour in turn."""
    ids = _oldest(session, TelemetryRow.id, TelemetryRow.received_at, before, limit)
    if not ids:
        return 0
    # Plain rows, not ORM objects: a few thousand of them per transaction.
    found = session.execute(
        select(
            TelemetryRow.id,
            TelemetryRow.device_id,
            TelemetryRow.batch_id,
            TelemetryRow.received_at,
            TelemetryRow.batch,
        )
        .where(TelemetryRow.id.in_(ids))
        # Roll-ups made in the batches' order get ids in their hours' order, the order
        # remove_rollups takes; PostgreSQL returns rows in the order it stores them.
        .order_by(TelemetryRow.id)
    )
    rows = [(row, TelemetryBatch.model_validate(row.batch)) for row in found]
    labels = feedback.batch_labels(session, TelemetryRow.id.in_(ids))
    rollups = _rollups(
        session, {row.device_id for row, _ in rows}, {_hour(row.received_at) for row, _ in rows}
    )
    for row, batch in rows:
        key = (row.device_id, _hour(row.received_at), batch.bundle_digest or "")
        rollup = rollups.get(key)
        if rollup is None:
            rollup = rollups[key] = _empty(*key)
            session.add(rollup)
        _add(rollup, batch, labels.get(row.id))
    # A resent batch is told from a new one by its id alone once its row is gone.
    session.execute(
        insert(ReceivedBatchRow),
        [
            {
                "device_id": row.device_id,
                "kind": "telemetry",
                "batch_id": row.batch_id,
                "accepted": 1,
                "received_at": row.received_at,
            }
            for row, _ in rows
        ],
    )
    session.execute(delete(TelemetryRow).where(TelemetryRow.id.in_(ids)), execution_options=_BULK)
    return len(ids)


def remove_rollups(session: Session, before: datetime, limit: int) -> int:
    """Remove the oldest roll-ups of an hour before `before`, at most `limit`; how many."""
    ids = _oldest(session, TelemetryRollupRow.id, TelemetryRollupRow.hour, before, limit)
    session.execute(
        delete(TelemetryRollupRow).where(TelemetryRollupRow.id.in_(ids)), execution_options=_BULK
    )
    return len(ids)


def remove_events(session: Session, before: datetime, limit: int) -> int:
    """Remove the oldest events received before `before`, at most `limit`; how many."""
    ids = _oldest(session, EventRow.id, EventRow.received_at, before, limit)
    session.execute(delete(EventRow).where(EventRow.id.in_(ids)), execution_options=_BULK)
    return len(ids)


def remove_windows(session: Session, before: datetime, limit: int) -> int:
    """Remove the oldest windows sent for review before `before` that nobody labelled, at
    most `limit`; how many. A labelled one is a sample too, and stays."""
    unlabelled = ReviewWindowRow.label.is_(None)
    ids = _oldest(
        session, ReviewWindowRow.id, ReviewWindowRow.received_at, before, limit, unlabelled
    )
    session.execute(
        delete(ReviewWindowRow).where(ReviewWindowRow.id.in_(ids)), execution_options=_BULK
    )
    return len(ids)


def remove_batch_ids(session: Session, before: datetime, limit: int) -> int:
    """Forget the oldest batch ids received before `before`, at most `limit`; how many."""
    ids = _oldest(session, ReceivedBatchRow.id, ReceivedBatchRow.received_at, before, limit)
    session.execute(
        delete(ReceivedBatchRow).where(ReceivedBatchRow.id.in_(ids)), execution_options=_BULK
    )
    return len(ids)


def count(session: Session, name: str, removed: int, at: datetime) -> None:
    """Add `removed` to the rows retention removed from table `name`, in all and in the run
    under way; `at` is when it first looked at the table, if it never did."""
    row = session.get(RetentionTotalRow, name)
    if row is None:
        session.add(RetentionTotalRow(name=name, removed=removed, pending=removed, last_run_at=at))
    else:
        row.removed = _sum(row.removed, removed)
        row.pending = _sum(row.pending, removed)


def finish(session: Session, at: datetime) -> dict[str, int]:
    """End the run under way at `at`: the rows it removed by table, which start again at 0."""
    rows = totals(session)
    done = {name: rows[name].pending if name in rows else 0 for name in TABLES}
    for name in TABLES:
        count(session, name, 0, at)
    for row in totals(session).values():
        row.pending = 0
        row.last_run_at = at
    return done


def totals(session: Session) -> dict[str, RetentionTotalRow]:
    """The rows retention removed so far and when it last ran, by table."""
    return {row.name: row for row in session.scalars(select(RetentionTotalRow))}


def last_run(session: Session) -> datetime | None:
    """When retention last finished a run; None when it never did."""
    return session.scalar(select(func.max(RetentionTotalRow.last_run_at)))


def _oldest(
    session: Session,
    id_column: InstrumentedAttribute[int],
    at_column: InstrumentedAttribute[datetime],
    before: datetime,
    limit: int,
    *where: ColumnElement[bool],
) -> list[int]:
    """The ids of the oldest rows but the newest, at most `limit`, up to the first whose
    `at_column` is `before` or later. Rows are read in id order, which is about the order of
    that time, so no index on the time is needed; a row whose id came before an older one's
    holds that one back a while."""
    # The newest row stays, however old: SQLite gives the next row the largest id plus one,
    # and ids that only grow are what listings page after and webhooks deliver after.
    newest = select(func.max(id_column)).scalar_subquery()
    rows = session.execute(
        select(id_column, at_column)
        .where(id_column < newest, *where)
        .order_by(id_column)
        .limit(limit)
    ).all()
    return [row_id for row_id, _ in takewhile(lambda row: row[1] < before, rows)]


def _hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _rollups(
    session: Session, devices: set[str], hours: set[datetime]
) -> dict[tuple[str, datetime, str], TelemetryRollupRow]:
    """The roll-ups already kept of `devices` in `hours`, by key."""
    kept = session.scalars(
        select(TelemetryRollupRow).where(
            TelemetryRollupRow.device_id.in_(devices), TelemetryRollupRow.hour.in_(hours)
        )
    )
    return {(r.device_id, r.hour, r.bundle_digest): r for r in kept}


def _empty(device_id: str, hour: datetime, digest: str) -> TelemetryRollupRow:
    return TelemetryRollupRow(
        device_id=device_id,
        hour=hour,
        bundle_digest=digest,
        batches=0,
        windows=0,
        predictions={},
        confidence=[],
        labelled=0,
        right=0,
        raw_bytes=0,
        uplink_bytes=0,
        failed_chunks=0,
        latency_ms_p95_max=None,
    )


def _add(rollup: TelemetryRollupRow, batch: TelemetryBatch, label: str | None) -> None:
    """Add `batch`, which the newest span holding it labels `label`, to `rollup`."""
    rollup.batches = _sum(rollup.batches, 1)
    rollup.windows = _sum(rollup.windows, batch.windows)
    predictions = dict(rollup.predictions)
    for name, n in batch.predictions.items():
        predictions[name] = _sum(predictions.get(name, 0), n)
    # JSON columns see a new value, never one changed in place.
    rollup.predictions = predictions
    confidence = batch.monitoring.confidence if batch.monitoring else []
    # Histograms of other bins cannot be added up; accuracy leaves out any that is not in
    # its model's calibrated bins, so a bundle's live ones all have the same.
    if not rollup.confidence:
        rollup.confidence = list(confidence)
    elif len(confidence) == len(rollup.confidence):
        rollup.confidence = [_sum(a, b) for a, b in zip(rollup.confidence, confidence, strict=True)]
    if label is not None:
        tally = feedback.Tally()
        tally.label(batch.predictions, label)
        rollup.right = _sum(rollup.right, tally.right)
        rollup.labelled = _sum(rollup.labelled, tally.labelled)
    rollup.raw_bytes = _sum(rollup.raw_bytes, batch.raw_bytes)
    rollup.uplink_bytes = _sum(rollup.uplink_bytes, batch.uplink_bytes)
    rollup.failed_chunks = _sum(rollup.failed_chunks, batch.failed_chunks)
    if batch.latency_ms_p95 is not None:
        rollup.latency_ms_p95_max = max(rollup.latency_ms_p95_max or 0.0, batch.latency_ms_p95)


def _sum(a: int, b: int) -> int:
    # A device may send counts up to the 64-bit limit; a column cannot hold their sum.
    return min(a + b, INT64_MAX)
