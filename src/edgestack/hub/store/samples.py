"""Labelled feature windows from the devices: the training set, with the spec of each."""

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from edgestack.bundle import InputSpec
from edgestack.hub.errors import Forbidden, Unprocessable
from edgestack.hub.store import batches, devices
from edgestack.hub.store.db import Window, utcnow
from edgestack.hub.store.tables import SampleRow, SpecRow
from edgestack.protocol import (
    DataSample,
    DatasetView,
    IngestAck,
    SampleBatch,
    SampleRecord,
    Split,
)

__all__ = ["TEST_PERCENT", "check_widths", "dataset", "ingest", "keep_spec", "split_of", "store"]

TEST_PERCENT = 20


def ingest(session: Session, device_id: str, batch: SampleBatch) -> IngestAck:
    """Store a device's samples in `batch.dataset`; all or none of them, once per batch id.

    A device writes only the collection its desired state asks for, that dataset and that
    label, or the one it asked for before (`devices.may_collect`); anything else is refused.
    """
    row = devices.get(session, device_id)
    # Compared as pairs: what a device sends need not be a name a collection could hold.
    allowed = {(c.label, c.dataset) for c in devices.may_collect(session, device_id)}
    for i, sample in enumerate(batch.samples):
        if sample.split is not None:
            raise Unprocessable(
                f"body.samples[{i}].split: a device's samples take the hub's split (a hash of "
                "where and when each was taken); leave split out, or import the samples with "
                "`edgestack data import` to give their split"
            )
        if (sample.label, batch.dataset) not in allowed:
            current = devices.desired(session, device_id).collect
            asked = (
                f"label '{current.label}' into dataset '{current.dataset}'"
                if current
                else "no collection"
            )
            raise Forbidden(
                f"body.samples[{i}]: device '{device_id}' may not send samples labelled "
                f"'{sample.label}' into dataset '{batch.dataset}': its desired state asks for "
                f"{asked}; an operator sets it with `edgestack data collect`"
            )
    ack = store(session, device_id, batch.dataset, batch.batch_id, batch.spec, batch.samples)
    row.last_seen = utcnow()
    return ack


def store(
    session: Session,
    source: str,
    dataset: str,
    batch_id: UUID,
    spec: InputSpec,
    samples: Sequence[DataSample],
) -> IngestAck:
    """Store samples from `source` (a device, or an import's name) in `dataset` under their
    spec's fingerprint, each in the split it names or else `split_of` it; all or none of them,
    once per batch id."""
    check_widths(spec, [sample.features for sample in samples], "samples")
    if not batches.claim(session, source, "samples", batch_id, len(samples)):
        return IngestAck(batch_id=batch_id, accepted=0, duplicate=True)
    fingerprint = keep_spec(session, spec)
    session.add_all(
        SampleRow(
            device_id=source,
            batch_id=str(batch_id),
            dataset=dataset,
            spec=fingerprint,
            label=sample.label,
            split=sample.split or split_of(source, sample.at),
            at=sample.at,
            features=sample.features,
        )
        for sample in samples
    )
    return IngestAck(batch_id=batch_id, accepted=len(samples), duplicate=False)


def check_widths(spec: InputSpec, rows: Sequence[Sequence[float]], field: str) -> None:
    """Refuse (422) a row of other than one value per `spec.features`, naming it in `field`."""
    width = len(spec.features)
    for i, row in enumerate(rows):
        if len(row) != width:
            raise Unprocessable(
                f"body.{field}[{i}].features: has {len(row)} values but spec.features names "
                f"{width}; send one value per feature, in spec order"
            )


def keep_spec(session: Session, spec: InputSpec) -> str:
    """Store `spec` once under its fingerprint, for rows to refer to; the fingerprint."""
    fingerprint = spec.fingerprint()
    if session.get(SpecRow, fingerprint) is None:
        session.add(SpecRow(fingerprint=fingerprint, spec=spec.model_dump(mode="json")))
        session.flush()  # rows refer to it, and no relationship tells the ORM so
    return fingerprint


def split_of(source: str, at: datetime) -> Split:
    """`test` for about `TEST_PERCENT` in a hundred samples, the same for a sample every time:
    a hash of where and when it was taken, so no export or retraining reshuffles the splits."""
    key = f"{source}/{at.astimezone(UTC).isoformat()}".encode()
    bucket = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % 100
    return "test" if bucket < TEST_PERCENT else "train"


def dataset(
    session: Session,
    window: Window | None = None,
    *,
    label: str | None = None,
    device_id: str | None = None,
    dataset: str | None = None,
) -> DatasetView:
    """The samples in `window`, with every spec they were computed under."""
    query = (window or Window()).apply(select(SampleRow), SampleRow.id)
    if dataset is not None:
        query = query.where(SampleRow.dataset == dataset)
    if label is not None:
        query = query.where(SampleRow.label == label)
    if device_id is not None:
        query = query.where(SampleRow.device_id == device_id)
    records = [
        SampleRecord(
            id=row.id,
            device_id=row.device_id,
            at=row.at,
            label=row.label,
            spec=row.spec,
            features=row.features,
        )
        for row in session.scalars(query)
    ]
    fingerprints = {record.spec for record in records}
    specs = session.scalars(select(SpecRow).where(SpecRow.fingerprint.in_(fingerprints)))
    return DatasetView(
        specs={row.fingerprint: InputSpec.model_validate(row.spec) for row in specs},
        samples=records,
    )
