"""Telemetry batches, each stored once, summed into the device's totals."""

from collections import Counter

from sqlalchemy import select
from sqlalchemy.orm import Session

from edgestack.hub.store import alerts, devices
from edgestack.hub.store.db import utcnow
from edgestack.hub.store.tables import TelemetryRow
from edgestack.protocol import IngestAck, TelemetryBatch, TelemetryTotals

__all__ = ["ingest"]

_KEEP_EXAMPLES = 20
# A device's totals keep this many names per map; rarer ones are summed under `_OTHER`, so a
# device sending new names in every batch cannot grow its row without end.
_KEEP_KEYS = 256
_OTHER = "other"


def ingest(session: Session, device_id: str, batch: TelemetryBatch) -> IngestAck:
    """Store a batch, add it to the totals, and move the device's alerts on by it when it is
    the device's newest; a batch already stored changes nothing."""
    row = devices.get(session, device_id)
    stored = session.scalar(
        select(TelemetryRow.id).where(
            TelemetryRow.device_id == device_id, TelemetryRow.batch_id == str(batch.batch_id)
        )
    )
    if stored is not None:
        return IngestAck(batch_id=batch.batch_id, accepted=0, duplicate=True)
    now = utcnow()
    session.add(
        TelemetryRow(
            device_id=device_id,
            batch_id=str(batch.batch_id),
            seq=batch.seq,
            start=batch.start,
            end=batch.end,
            received_at=now,
            batch=batch.model_dump(mode="json"),
        )
    )
    before = TelemetryTotals.model_validate(row.telemetry)
    row.telemetry = _add(before, batch).model_dump(mode="json")
    row.last_seen = now
    # Alerts say how a device is now: a batch older than one seen, resent after an outage,
    # would only break the streaks in a row.
    if batch.seq > before.last_seq:
        alerts.evaluate(session, device_id, batch)
    return IngestAck(batch_id=batch.batch_id, accepted=1, duplicate=False)


def _add(totals: TelemetryTotals, batch: TelemetryBatch) -> TelemetryTotals:
    # Batches may arrive out of order; the one of the highest seq is the device's latest.
    latest = batch if batch.seq >= totals.last_seq else totals
    return TelemetryTotals(
        batches=totals.batches + 1,
        last_seq=max(totals.last_seq, batch.seq),
        windows=totals.windows + batch.windows,
        predictions=_capped(Counter(totals.predictions) + Counter(batch.predictions)),
        bad_input=_capped(Counter(totals.bad_input) + Counter(batch.bad_input)),
        bad_examples=[*totals.bad_examples, *batch.bad_examples][-_KEEP_EXAMPLES:],
        raw_bytes=totals.raw_bytes + batch.raw_bytes,
        uplink_bytes=totals.uplink_bytes + batch.uplink_bytes,
        failed_chunks=totals.failed_chunks + batch.failed_chunks,
        # Totals kept on the device: the largest seen is the latest, whatever order batches come.
        outbox_dropped=max(totals.outbox_dropped, batch.outbox_dropped),
        dead_lettered=max(totals.dead_lettered, batch.dead_lettered),
        latency_ms_p50=latest.latency_ms_p50,
        latency_ms_p95=latest.latency_ms_p95,
        mean_confidence=latest.mean_confidence,
    )


def _capped(counts: Counter[str]) -> dict[str, int]:
    if len(counts) <= _KEEP_KEYS:
        return dict(counts)
    kept = Counter(dict(counts.most_common(_KEEP_KEYS - 1)))
    kept[_OTHER] += sum(counts.values()) - sum(kept.values())
    return dict(kept)
