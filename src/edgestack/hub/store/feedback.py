"""Ground truth posted back as labelled spans, and how each model does on each device: live
accuracy over the telemetry batches lying wholly inside a span, and, labels or not, the
accuracy its calibrated confidences make likely (CBPE)."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from edgestack.bundle import Calibration, Manifest
from edgestack.hub.errors import Unprocessable
from edgestack.hub.store import batches
from edgestack.hub.store.db import utcnow
from edgestack.hub.store.tables import (
    DeviceRow,
    FeedbackRow,
    ModelRow,
    TelemetryRollupRow,
    TelemetryRow,
)
from edgestack.monitoring import expected_correct
from edgestack.protocol import (
    AccuracyView,
    FeedbackAck,
    FeedbackBatch,
    FeedbackSpan,
    ReportedState,
    TelemetryBatch,
)

__all__ = [
    "Models",
    "Tally",
    "accuracy",
    "batch_accuracy",
    "batch_labels",
    "estimated_accuracy",
    "ingest",
    "label_at",
]

# Feedback comes from operators, not from one device: its batches are kept under this sender.
_SENDER = "admin"
_MAX_NOTES = 100


def ingest(session: Session, batch: FeedbackBatch) -> FeedbackAck:
    """Store the spans once; a batch sent again is acknowledged and changes nothing.

    Raises `Unprocessable` naming the first span whose device is not enrolled."""
    named = {span.device_id for span in batch.spans}
    rows = {
        row.device_id: row
        for row in session.scalars(select(DeviceRow).where(DeviceRow.device_id.in_(named)))
    }
    for i, span in enumerate(batch.spans):
        if span.device_id not in rows:
            raise Unprocessable(
                f"body.spans[{i}].device_id: '{span.device_id}' is not enrolled; label the "
                "windows of a device that is (edgestack devices lists them)"
            )
    if not batches.claim(session, _SENDER, "feedback", batch.batch_id, len(batch.spans)):
        return FeedbackAck(batch_id=batch.batch_id, accepted=0, duplicate=True)
    now = utcnow()
    session.add_all(
        FeedbackRow(
            device_id=span.device_id,
            batch_id=str(batch.batch_id),
            start=span.start,
            end=span.end,
            label=span.label,
            received_at=now,
        )
        for span in batch.spans
    )
    notes = _unknown_labels(Models(session), batch.spans, rows)
    return FeedbackAck(
        batch_id=batch.batch_id, accepted=len(batch.spans), duplicate=False, notes=notes
    )


def _unknown_labels(
    models: "Models", spans: Iterable[FeedbackSpan], devices: dict[str, DeviceRow]
) -> list[str]:
    running: dict[str, Manifest | None] = {}
    for device_id, row in devices.items():
        bundle = ReportedState.model_validate(row.reported).bundle if row.reported else None
        running[device_id] = models.manifest(bundle.digest) if bundle else None
    notes = []
    for i, span in enumerate(spans):
        manifest = running[span.device_id]
        if manifest is not None and span.label not in manifest.labels:
            notes.append(
                f"spans[{i}].label: '{span.label}' is not a label of {manifest.name} "
                f"v{manifest.version}, which {span.device_id} runs ({', '.join(manifest.labels)})"
                "; accepted, and every window under it counts as wrong"
            )
    if len(notes) > _MAX_NOTES:
        return [*notes[: _MAX_NOTES - 1], f"and {len(notes) - _MAX_NOTES + 1} more spans alike"]
    return notes


class Models:
    """Registered models by digest, each read once per instance: one request's cache."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._manifests: dict[str, Manifest | None] = {}

    def manifest(self, digest: str) -> Manifest | None:
        """The manifest of the registered bundle `digest`; None when none is registered."""
        if digest not in self._manifests:
            stored = self._session.scalar(
                select(ModelRow.manifest).where(ModelRow.digest == digest).limit(1)
            )
            self._manifests[digest] = None if stored is None else Manifest.model_validate(stored)
        return self._manifests[digest]

    def calibration(self, digest: str | None) -> Calibration | None:
        manifest = None if digest is None else self.manifest(digest)
        return None if manifest is None else manifest.calibration

    def named(self, digest: str | None) -> dict[str, Any]:
        """The `model` and `version` fields of a view of bundle `digest`: None when unknown."""
        manifest = None if digest is None else self.manifest(digest)
        if manifest is None:
            return {"model": None, "version": None}
        return {"model": manifest.name, "version": manifest.version}


def label_at(session: Session, device_id: str, start: datetime, end: datetime) -> str | None:
    """The label of the newest span of `device_id` holding all of `start` to `end`."""
    return session.scalar(
        select(FeedbackRow.label)
        .where(
            FeedbackRow.device_id == device_id,
            FeedbackRow.start <= start,
            FeedbackRow.end >= end,
        )
        .order_by(FeedbackRow.id.desc())
        .limit(1)
    )


def batch_accuracy(session: Session, device_id: str, batch: TelemetryBatch) -> float | None:
    """The share of the batch's predictions that a span's label says were right; None when
    no span holds the whole batch, or it predicted nothing."""
    label = label_at(session, device_id, batch.start, batch.end)
    tally = Tally()
    if label is not None:
        tally.label(batch.predictions, label)
    return tally.accuracy


def estimated_accuracy(models: Models, batch: TelemetryBatch) -> float | None:
    """The accuracy the batch's confidence histogram makes likely under its model's
    calibration; None without either, or when their bins differ."""
    tally = Tally()
    if batch.monitoring is not None:
        tally.estimate(models.calibration(batch.bundle_digest), batch.monitoring.confidence)
    return tally.estimated


def accuracy(
    session: Session, *, device_id: str | None = None, model: str | None = None
) -> list[AccuracyView]:
    """Per device and model it ran, live and estimated accuracy over every telemetry batch
    stored, and the roll-ups of those retention removed (labelled by the spans known when it
    rolled them up); only `device_id`'s and model `model`'s (a name) when given."""
    # Only the fields counted, picked out by the database: a stored batch holds much more.
    batch_rows = select(
        TelemetryRow.id,
        TelemetryRow.device_id,
        TelemetryRow.batch["bundle_digest"].as_string(),
        TelemetryRow.batch["predictions"],
        TelemetryRow.batch[("monitoring", "confidence")],
    )
    mine = [] if device_id is None else [TelemetryRow.device_id == device_id]
    labels = batch_labels(session, *mine)
    models = Models(session)
    tallies: dict[tuple[str, str], Tally] = {}

    def tally_of(device: str, digest: str) -> Tally | None:
        manifest = models.manifest(digest)
        if model is not None and (manifest is None or manifest.name != model):
            return None
        return tallies.setdefault((device, digest), Tally())

    rows = session.execute(batch_rows.where(*mine).order_by(TelemetryRow.id))
    for row_id, device, digest, predictions, confidence in rows:
        if digest is None or (tally := tally_of(device, digest)) is None:
            continue
        if row_id in labels:
            tally.label(predictions or {}, labels[row_id])
        tally.estimate(models.calibration(digest), confidence or [])
    # What retention kept of the batches it removed counts as they did.
    rolled = select(TelemetryRollupRow).where(TelemetryRollupRow.bundle_digest != "")
    if device_id is not None:
        rolled = rolled.where(TelemetryRollupRow.device_id == device_id)
    for rollup in session.scalars(rolled.order_by(TelemetryRollupRow.id)):
        if (tally := tally_of(rollup.device_id, rollup.bundle_digest)) is not None:
            tally.right += rollup.right
            tally.labelled += rollup.labelled
            tally.estimate(models.calibration(rollup.bundle_digest), rollup.confidence)
    return [
        AccuracyView(
            device_id=device,
            bundle_digest=digest,
            **models.named(digest),
            accuracy=tally.accuracy,
            labelled_windows=tally.labelled,
            estimated_accuracy=tally.estimated,
            estimated_windows=tally.estimated_windows,
        )
        for (device, digest), tally in sorted(tallies.items())
    ]


def batch_labels(session: Session, *where: ColumnElement[bool]) -> dict[int, str]:
    """The label of the newest span holding each telemetry batch that `where` takes and some
    span holds, by the batch's row id."""
    covered = (
        select(TelemetryRow.id, FeedbackRow.label)
        .join(
            FeedbackRow,
            and_(
                FeedbackRow.device_id == TelemetryRow.device_id,
                FeedbackRow.start <= TelemetryRow.start,
                FeedbackRow.end >= TelemetryRow.end,
            ),
        )
        .where(*where)
        .order_by(FeedbackRow.id)
    )
    # Ordered by span: where spans overlap, the newest one's label is kept.
    return {row_id: label for row_id, label in session.execute(covered)}


@dataclass
class Tally:
    """Windows right and counted, by label and as the calibration expects."""

    right: int = 0
    labelled: int = 0
    expected: float = 0.0
    estimated_windows: int = 0

    def label(self, predictions: dict[str, Any], label: str) -> None:
        """Count `predictions` (windows per label) against the true `label`."""
        self.right += int(predictions.get(label, 0))
        self.labelled += sum(int(n) for n in predictions.values())

    def estimate(self, calibration: Calibration | None, confidence: list[int]) -> None:
        """Count the windows of a confidence histogram the calibration has the bins of."""
        if calibration is None or len(confidence) != len(calibration.accuracy):
            return
        self.expected += expected_correct(calibration, confidence)
        self.estimated_windows += sum(confidence)

    @property
    def accuracy(self) -> float | None:
        return self.right / self.labelled if self.labelled else None

    @property
    def estimated(self) -> float | None:
        return self.expected / self.estimated_windows if self.estimated_windows else None
