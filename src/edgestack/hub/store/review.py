"""Windows sent for review: the hub asks a device for the recent windows its model was least
sure of, stores those it sends, and turns each one labelled into a sample of a dataset.

A device sends windows only for the request its desired state holds, and no more than that
request's count: it may write only what it was asked for.
"""

import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from edgestack.bundle import InputSpec
from edgestack.hub.errors import Forbidden, NotFound
from edgestack.hub.store import batches, devices, samples
from edgestack.hub.store.db import Window, utcnow
from edgestack.hub.store.tables import ReviewWindowRow, SpecRow
from edgestack.protocol import (
    DataSample,
    DesiredState,
    IngestAck,
    LabelledWindows,
    ReviewWindowView,
    WindowBatch,
    WindowLabels,
    WindowRequest,
)

__all__ = ["ask", "ingest", "label", "listing"]

# Labelled windows become samples in batches named after this and their ids, so labelling
# the same windows again adds no sample twice.
_LABELS = uuid.UUID("5f0e3c1a-9a57-4c55-8d57-5e2f1f0c7a11")


def ask(session: Session, device_id: str, count: int) -> DesiredState:
    """Ask `device_id` for its `count` least confident recent windows, as a new request; the
    desired state that asks it."""
    asked = devices.desired(session, device_id).send_windows
    request = WindowRequest(request_id=asked.request_id + 1 if asked else 1, count=count)
    return devices.steer(session, device_id, send_windows=request)


def ingest(session: Session, device_id: str, batch: WindowBatch) -> IngestAck:
    """Store the windows a device sent for its current request; all or none, once per batch."""
    row = devices.get(session, device_id)
    asked = devices.desired(session, device_id).send_windows
    if asked is None or asked.request_id != batch.request_id:
        raise Forbidden(
            f"body.request_id: device '{device_id}' was not asked for windows under request "
            f"{batch.request_id}; its desired state asks "
            + (f"request {asked.request_id}" if asked else "for none")
            + "; an operator asks with `edgestack windows ask`"
        )
    samples.check_widths(batch.spec, [w.features for w in batch.windows], "windows")
    sent = session.scalar(
        select(func.count(ReviewWindowRow.id)).where(
            ReviewWindowRow.device_id == device_id,
            ReviewWindowRow.request_id == batch.request_id,
        )
    )
    if not batches.claim(session, device_id, "windows", batch.batch_id, len(batch.windows)):
        return IngestAck(batch_id=batch.batch_id, accepted=0, duplicate=True)
    if (sent or 0) + len(batch.windows) > asked.count:
        raise Forbidden(
            f"body.windows: request {asked.request_id} asked device '{device_id}' for "
            f"{asked.count} windows; it has sent {sent}, and this batch would add "
            f"{len(batch.windows)}"
        )
    fingerprint = samples.keep_spec(session, batch.spec)
    now = utcnow()
    session.add_all(
        ReviewWindowRow(
            device_id=device_id,
            request_id=batch.request_id,
            spec=fingerprint,
            bundle_digest=batch.bundle_digest,
            at=window.at,
            features=window.features,
            predicted=window.predicted,
            confidence=window.confidence,
            received_at=now,
        )
        for window in batch.windows
    )
    row.last_seen = now
    return IngestAck(batch_id=batch.batch_id, accepted=len(batch.windows), duplicate=False)


def listing(
    session: Session,
    window: Window,
    *,
    device_id: str | None = None,
    labelled: bool | None = None,
) -> list[ReviewWindowView]:
    """The windows in `window` (by id), of one device, labelled or not, when asked."""
    query = window.apply(select(ReviewWindowRow), ReviewWindowRow.id)
    if device_id is not None:
        query = query.where(ReviewWindowRow.device_id == device_id)
    if labelled is not None:
        query = query.where(
            ReviewWindowRow.label.is_not(None) if labelled else ReviewWindowRow.label.is_(None)
        )
    return [_view(row) for row in session.scalars(query)]


def label(session: Session, labels: WindowLabels) -> LabelledWindows:
    """Give the windows `labels.ids` their label and add each as a sample of `labels.dataset`;
    all or none. A window labelled before keeps its first label and sample: labels are
    ground truth, not votes."""
    rows = session.scalars(select(ReviewWindowRow).where(ReviewWindowRow.id.in_(labels.ids))).all()
    missing = sorted(set(labels.ids) - {row.id for row in rows})
    if missing:
        raise NotFound(
            f"ids: no window {', '.join(map(str, missing[:10]))}; list them with "
            "`edgestack windows list`"
        )
    fresh = [row for row in rows if row.label is None]
    groups: dict[tuple[str, str], list[ReviewWindowRow]] = defaultdict(list)
    for row in fresh:
        row.label, row.dataset = labels.label, labels.dataset
        groups[row.device_id, row.spec].append(row)
    added = sum(
        _add_samples(session, device_id, labels, fingerprint, group)
        for (device_id, fingerprint), group in groups.items()
    )
    return LabelledWindows(labelled=len(fresh), samples=added)


def _add_samples(
    session: Session,
    device_id: str,
    labels: WindowLabels,
    fingerprint: str,
    rows: Sequence[ReviewWindowRow],
) -> int:
    spec_row = session.get(SpecRow, fingerprint)
    assert spec_row is not None  # the window refers to it
    batch_id = uuid.uuid5(_LABELS, ",".join(str(i) for i in sorted(row.id for row in rows)))
    ack = samples.store(
        session,
        device_id,
        labels.dataset,
        batch_id,
        InputSpec.model_validate(spec_row.spec),
        [DataSample(at=row.at, label=labels.label, features=row.features) for row in rows],
    )
    return ack.accepted


def _view(row: ReviewWindowRow) -> ReviewWindowView:
    return ReviewWindowView(
        id=row.id,
        device_id=row.device_id,
        request_id=row.request_id,
        bundle_digest=row.bundle_digest,
        spec=row.spec,
        at=row.at,
        predicted=row.predicted,
        confidence=row.confidence,
        label=row.label,
        dataset=row.dataset,
        features=row.features,
    )
