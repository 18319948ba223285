"""Labelled feature windows from the devices: the training set, with the spec of each."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from edgestack.bundle import InputSpec
from edgestack.hub.errors import Unprocessable
from edgestack.hub.store import batches, devices
from edgestack.hub.store.db import utcnow
from edgestack.hub.store.tables import SampleRow, SpecRow
from edgestack.protocol import DatasetView, IngestAck, SampleBatch, SampleRecord

__all__ = ["dataset", "ingest"]


def ingest(session: Session, device_id: str, batch: SampleBatch) -> IngestAck:
    """Store the samples under their spec's fingerprint; all or none of them."""
    width = len(batch.spec.features)
    for i, sample in enumerate(batch.samples):
        if len(sample.features) != width:
            raise Unprocessable(
                f"body.samples[{i}].features: has {len(sample.features)} values but "
                f"spec.features names {width}; send one value per feature, in spec order"
            )
    row = devices.get(session, device_id)
    if not batches.claim(session, device_id, "samples", batch.batch_id, len(batch.samples)):
        return IngestAck(batch_id=batch.batch_id, accepted=0, duplicate=True)
    fingerprint = batch.spec.fingerprint()
    if session.get(SpecRow, fingerprint) is None:
        session.add(SpecRow(fingerprint=fingerprint, spec=batch.spec.model_dump(mode="json")))
        session.flush()  # the samples refer to it, and no relationship tells the ORM so
    session.add_all(
        SampleRow(
            device_id=device_id,
            batch_id=str(batch.batch_id),
            spec=fingerprint,
            label=sample.label,
            at=sample.at,
            features=sample.features,
        )
        for sample in batch.samples
    )
    row.last_seen = utcnow()
    return IngestAck(batch_id=batch.batch_id, accepted=len(batch.samples), duplicate=False)


def dataset(
    session: Session, *, label: str | None = None, device_id: str | None = None
) -> DatasetView:
    """Samples in arrival order, with every spec they were computed under."""
    query = select(SampleRow).order_by(SampleRow.id)
    if label is not None:
        query = query.where(SampleRow.label == label)
    if device_id is not None:
        query = query.where(SampleRow.device_id == device_id)
    records = [
        SampleRecord(
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
