"""Telemetry batches, each stored once, summed into the device's totals.

The totals keep the latest monitoring numbers and a rolling input drift: the drift sketches of
the device's latest batches of the bundle it runs, summed until they cover `DRIFT_WINDOWS`
windows, and scored against the bundle's reference as the registry holds it.
"""

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from edgestack.hub.store import alerts, devices, feedback
from edgestack.hub.store import batches as batches_received
from edgestack.hub.store.db import Window, utcnow
from edgestack.hub.store.tables import DeviceRow, TelemetryRow
from edgestack.monitoring import ks, psi
from edgestack.protocol import (
    IngestAck,
    MonitorReport,
    OffloadReport,
    TelemetryBatch,
    TelemetryTotals,
    TelemetryView,
)

__all__ = ["DRIFT_BATCHES", "DRIFT_WINDOWS", "batches", "ingest", "ingest_many"]

DRIFT_WINDOWS = 120
"""Windows the rolling drift needs before it gives a score: PSI over fewer is mostly noise
(one empty bin alone adds about 0.7)."""
DRIFT_BATCHES = 64
"""The most batches it looks back over: a device whose latest batches hold fewer than
`DRIFT_WINDOWS` windows in all has no drift score."""
_PAGE = 8

_KEEP_EXAMPLES = 20
# A device's totals keep this many names per map; rarer ones are summed under `_OTHER`, so a
# device sending new names in every batch cannot grow its row without end.
_KEEP_KEYS = 256
_OTHER = "other"


def ingest(session: Session, device_id: str, batch: TelemetryBatch) -> IngestAck:
    """Store a batch, add it to the totals, and move the device's alerts on by it when it is
    the device's newest; a batch already stored changes nothing."""
    return ingest_many(session, [(device_id, batch)])[0]


def ingest_many(
    session: Session, received: Sequence[tuple[str, TelemetryBatch]]
) -> list[IngestAck]:
    """`ingest` each batch of `received` (device id, batch), in order, reading what they all
    need alike once (the devices' totals, which batches are stored, the alert rules and the
    models) and writing the batches and totals in one statement each."""
    group = _Group(session, received)
    acks = [group.ingest(device_id, batch) for device_id, batch in received]
    group.write()
    return acks


class _Group:
    """Batches stored together. Rows and totals are plain values, not ORM objects: loading a
    device's whole twin and flushing object by object cost most of a batch's time."""

    def __init__(self, session: Session, received: Sequence[tuple[str, TelemetryBatch]]) -> None:
        self._session = session
        ids = {device_id for device_id, _ in received}
        found = session.execute(
            select(DeviceRow.device_id, DeviceRow.telemetry).where(DeviceRow.device_id.in_(ids))
        )
        self._totals = {
            device_id: TelemetryTotals.model_validate(totals) for device_id, totals in found
        }
        self._stored = _stored(session, received)
        self._lookups = alerts.Lookups(session, ids)
        self._rows: list[dict[str, Any]] = []
        self._seen: dict[str, datetime] = {}

    def ingest(self, device_id: str, batch: TelemetryBatch) -> IngestAck:
        """`ingest`, the batches of this group before it counted."""
        session = self._session
        if device_id not in self._totals:
            raise devices.not_enrolled(device_id)
        before = self._totals[device_id]
        key = (device_id, str(batch.batch_id))
        # Only a batch no newer than the latest could be one retention removed: the usual,
        # newer one costs no second look-up.
        if key in self._stored or (
            batch.seq <= before.last_seq
            and batches_received.seen(session, device_id, "telemetry", batch.batch_id)
        ):
            return IngestAck(batch_id=batch.batch_id, accepted=0, duplicate=True)
        self._stored.add(key)
        now = utcnow()
        self._rows.append(
            {
                "device_id": device_id,
                "batch_id": key[1],
                "seq": batch.seq,
                "start": batch.start,
                "end": batch.end,
                "received_at": now,
                "batch": batch.model_dump(mode="json"),
            }
        )
        totals = _add(before, batch)
        if batch.seq >= before.last_seq:
            if batch.monitoring is not None and batch.monitoring.drift is not None:
                self._insert()  # the rolling drift reads the device's batches back
            drift = _drift(session, device_id, batch, self._lookups.models)
            totals = totals.model_copy(update=drift)
        self._totals[device_id] = totals
        self._seen[device_id] = now
        # Alerts say how a device is now: a batch older than one seen, resent after an
        # outage, would only break the streaks in a row.
        if batch.seq > before.last_seq:
            alerts.evaluate(session, device_id, batch, totals, self._lookups)
        return IngestAck(batch_id=batch.batch_id, accepted=1, duplicate=False)

    def write(self) -> None:
        """Write the batches and the totals they changed."""
        self._insert()
        if not self._seen:
            return
        self._session.execute(
            update(DeviceRow),
            [
                {
                    "device_id": device_id,
                    "telemetry": self._totals[device_id].model_dump(mode="json"),
                    "last_seen": at,
                }
                for device_id, at in self._seen.items()
            ],
        )

    def _insert(self) -> None:
        if self._rows:
            self._session.execute(insert(TelemetryRow), self._rows)
            self._rows = []


def _stored(
    session: Session, received: Sequence[tuple[str, TelemetryBatch]]
) -> set[tuple[str, str]]:
    """Which of the batches `received` are stored, as (device id, batch id)."""
    keys = {(device_id, str(batch.batch_id)) for device_id, batch in received}
    # Two lists rather than a list of pairs: SQLite scans the whole table for pairs, and
    # finds these in the (device, batch id) index; the few pairs the lists cross are dropped.
    found = session.execute(
        select(TelemetryRow.device_id, TelemetryRow.batch_id).where(
            TelemetryRow.device_id.in_({device_id for device_id, _ in keys}),
            TelemetryRow.batch_id.in_({batch_id for _, batch_id in keys}),
        )
    )
    return {(device_id, batch_id) for device_id, batch_id in found} & keys


def batches(session: Session, device_id: str, window: Window) -> list[TelemetryView]:
    """The batches of an enrolled device in `window`, by the order the hub stored them."""
    devices.get(session, device_id)
    query = window.apply(select(TelemetryRow), TelemetryRow.id).where(
        TelemetryRow.device_id == device_id
    )
    return [
        TelemetryView(
            id=row.id,
            device_id=row.device_id,
            received_at=row.received_at,
            batch=TelemetryBatch.model_validate(row.batch),
        )
        for row in session.scalars(query)
    ]


def _add(totals: TelemetryTotals, batch: TelemetryBatch) -> TelemetryTotals:
    # Batches may arrive out of order; the one of the highest seq is the device's latest.
    latest = batch if batch.seq >= totals.last_seq else totals
    monitoring = batch.monitoring
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
        latest_predictions=latest.predictions if latest is batch else totals.latest_predictions,
        latency_ms_p50=latest.latency_ms_p50,
        latency_ms_p95=latest.latency_ms_p95,
        mean_confidence=latest.mean_confidence,
        outbox_pending=latest.outbox_pending,
        changes=_capped(_summed(totals.changes, monitoring.changes if monitoring else {})),
        **_offloaded(totals, batch.offload),
        **(
            _monitored(monitoring)
            if latest is batch
            # an older batch arriving late changes none of the latest numbers, drift included
            else {name: getattr(totals, name) for name in (*_MONITORED, *_no_drift())}
        ),
    )


def _offloaded(totals: TelemetryTotals, report: OffloadReport | None) -> dict[str, Any]:
    """The offload totals with a batch's report added."""
    if report is None:
        return {name: getattr(totals, name) for name in _OFFLOAD}
    answered = Counter(totals.offload_answered)
    answered.update(report.answered)
    return {
        "offloaded": totals.offloaded + report.windows,
        "offload_answered": dict(answered),
        "offload_fallbacks": totals.offload_fallbacks + report.fallbacks,
        "offload_uplink_bytes": totals.offload_uplink_bytes + report.uplink_bytes,
    }


_OFFLOAD = ("offloaded", "offload_answered", "offload_fallbacks", "offload_uplink_bytes")


def _monitored(report: MonitorReport | None) -> dict[str, Any]:
    """The numbers the totals keep of a batch's monitoring report: none without one."""
    return {name: getattr(report, name) if report else None for name in _MONITORED}


_MONITORED = (
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "throughput",
    "cpu_share",
    "rss_bytes",
    "anomaly_max",
    "anomaly_mean",
)


def _no_drift() -> dict[str, Any]:
    """The drift fields of totals without a drift score."""
    return {
        "drift_windows": 0,
        "drift_psi": None,
        "drift_ks": None,
        "drift_psi_by_feature": {},
        "drift_ks_by_feature": {},
    }


def _drift(
    session: Session, device_id: str, latest: TelemetryBatch, models: feedback.Models
) -> dict[str, Any]:
    """The rolling drift fields of the totals, with `latest` the device's latest batch."""
    none = _no_drift()
    digest = latest.bundle_digest
    if digest is None or latest.monitoring is None or latest.monitoring.drift is None:
        return none
    manifest = models.manifest(digest)
    if manifest is None or manifest.reference is None:
        return none  # a bundle this hub did not register, or one without reference statistics
    reference = manifest.reference
    shape = (len(reference.shares), len(reference.shares[0]))
    counts = np.zeros(shape, dtype=np.int64)
    for sketch in _sketches(session, device_id, latest, shape):
        counts += sketch
        if counts[0].sum() >= DRIFT_WINDOWS:
            break
    windows = int(counts[0].sum())
    if windows < DRIFT_WINDOWS:
        return none | {"drift_windows": windows}
    features = manifest.input.features
    by_psi = _by_feature(features, psi(reference, counts))
    by_ks = _by_feature(features, ks(reference, counts))
    return {
        "drift_windows": windows,
        "drift_psi": max(by_psi.values(), default=None),
        "drift_ks": max(by_ks.values(), default=None),
        "drift_psi_by_feature": by_psi,
        "drift_ks_by_feature": by_ks,
    }


def _sketches(
    session: Session, device_id: str, latest: TelemetryBatch, shape: tuple[int, int]
) -> Iterator[np.ndarray]:
    """The drift counts of `latest`, then of the batches before it, newest first, as long as
    they ran the same bundle; a sketch of another shape than the reference's is left out."""
    assert latest.monitoring is not None and latest.monitoring.drift is not None
    newest = _fitting(latest.monitoring.drift.counts, shape)
    if newest is not None:
        yield newest
    older = (
        select(TelemetryRow.batch)
        .where(TelemetryRow.device_id == device_id, TelemetryRow.seq < latest.seq)
        .order_by(TelemetryRow.seq.desc())
    )
    # A page at a time: most devices cover the windows in a batch or two, and each row is a
    # whole batch's JSON.
    for offset in range(0, DRIFT_BATCHES - 1, _PAGE):
        page = session.scalars(older.offset(offset).limit(_PAGE)).all()
        for batch in page:
            if batch.get("bundle_digest") != latest.bundle_digest:
                return
            drift = (batch.get("monitoring") or {}).get("drift")
            counts = _fitting(drift["counts"], shape) if drift else None
            if counts is not None:
                yield counts
        if len(page) < _PAGE:
            return


def _fitting(counts: list[list[int]], shape: tuple[int, int]) -> np.ndarray | None:
    """`counts` as an array if they have the reference's shape, features by bins; None for a
    sketch of another shape, which a device sent wrong."""
    if len(counts) != shape[0] or any(len(row) != shape[1] for row in counts):
        return None
    return np.array(counts, dtype=np.int64)


def _by_feature(features: list[str], scores: np.ndarray) -> dict[str, float]:
    """Finite scores by feature name; a feature that saw no rows has none."""
    return {
        name: round(score, 6)
        for name, score in zip(features, scores.tolist(), strict=True)
        if math.isfinite(score)
    }


def _summed(counts: dict[str, int], more: dict[str, int]) -> Counter[str]:
    """The counts added up, keeping a name whose count is still 0: a signal watched without
    an alarm yet is a series of 0, not a missing one."""
    summed = Counter(counts)
    summed.update(more)
    return summed


def _capped(counts: Counter[str]) -> dict[str, int]:
    if len(counts) <= _KEEP_KEYS:
        return dict(counts)
    kept = Counter(dict(counts.most_common(_KEEP_KEYS - 1)))
    kept[_OTHER] += sum(counts.values()) - sum(kept.values())
    return dict(kept)
