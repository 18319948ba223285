"""A rollout wave's gate: what its devices reported of the candidate in shadow, and whether
that lets the candidate take over.

Readings come from the `ShadowReport`s of the telemetry batches the wave's devices sent since
the wave started, from the feedback spans that hold those batches (the candidate's accuracy),
and from the device events saying the candidate failed on them. A gate
never promotes on readings it does not have: a term without a reading, or a device under
`min_windows`, leaves the wave waiting.
"""

import math
from collections import defaultdict
from datetime import datetime
from typing import Literal

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from edgestack.bundle import Reference
from edgestack.hub.store import feedback
from edgestack.hub.store.tables import EventRow, TelemetryRow
from edgestack.monitoring import LatencyHistogram, psi
from edgestack.protocol import Gate, GateReadings, ShadowReport

__all__ = ["FAILED_KINDS", "Verdict", "judge", "read"]

FAILED_KINDS = frozenset({"bundle_refused", "load_failed", "model_failed"})
"""The device events that say a bundle failed on it."""

Verdict = Literal["holds", "fails", "lacks"]


def read(
    session: Session,
    devices: list[str],
    digest: str,
    since: datetime,
    min_windows: int,
    reference: Reference | None = None,
) -> GateReadings:
    """What `devices` reported of bundle `digest` since `since`. The drift reading is the
    largest PSI of the bin counts they sent, added up, against the bundle's `reference`;
    without counts, the largest PSI a single report gave."""
    windows: dict[str, int] = defaultdict(int)
    agreed = failures = correct = labelled = 0
    confidence = 0.0
    latency = LatencyHistogram()
    drift: list[float] = []
    expected = None if reference is None else np.array(reference.shares).shape
    counts = None if expected is None else np.zeros(expected, dtype=np.int64)
    batches = session.execute(
        select(
            TelemetryRow.batch, TelemetryRow.device_id, TelemetryRow.start, TelemetryRow.end
        ).where(TelemetryRow.device_id.in_(devices), TelemetryRow.received_at >= since)
    )
    for batch, device_id, start, end in batches:
        if not batch.get("shadow"):
            continue
        report = ShadowReport.model_validate(batch["shadow"])
        if report.bundle.digest != digest:
            continue
        windows[device_id] += report.windows
        agreed += report.agreed
        # Feedback may come after the batch: each reading looks again.
        if report.predictions and (label := feedback.label_at(session, device_id, start, end)):
            correct += report.predictions.get(label, 0)
            labelled += sum(report.predictions.values())
        failures += report.failures
        if report.mean_confidence is not None:
            confidence += report.mean_confidence * report.windows
        latency.merge(LatencyHistogram.from_sparse(report.latency))
        if report.drift_psi is not None:
            drift.append(report.drift_psi)
        sent = report.drift.counts if report.drift is not None else None
        # Counts of other bins than the reference's cannot be added up: left out.
        if counts is not None and sent is not None and _fits(sent, counts.shape):
            counts += np.array(sent, dtype=np.int64)
    total = sum(windows.values())
    drift_psi = max(drift, default=None)
    if reference is not None and counts is not None and counts.sum():
        drift_psi = _psi(reference, counts)
    p99 = latency.quantile(0.99) * 1000 if latency.total else math.nan
    return GateReadings(
        windows=total,
        accuracy=correct / labelled if labelled else None,
        labelled=labelled,
        agreement=agreed / total if total else None,
        p99_ms=None if math.isnan(p99) else p99,
        error_rate=failures / (total + failures) if total + failures else None,
        drift_psi=drift_psi,
        mean_confidence=confidence / total if total and confidence else None,
        short=[d for d in devices if windows[d] < min_windows],
        failed=_failed(session, devices, digest, since),
    )


def judge(gate: Gate, readings: GateReadings) -> tuple[Verdict, str]:
    """Whether `readings` pass `gate`, and why: `lacks` while a device is short of windows
    or a term has no reading, `fails` when a term is broken, else `holds`."""
    if readings.short:
        return "lacks", f"too few windows from {', '.join(readings.short)}"
    checks = [
        (name, op, threshold, getattr(readings, name))
        for name, op, threshold in (
            ("accuracy", ">=", gate.accuracy),
            ("agreement", ">=", gate.agreement),
            ("p99_ms", "<=", gate.p99_ms),
            ("error_rate", "<=", gate.error_rate),
            ("drift_psi", "<=", gate.drift_psi),
        )
        if threshold is not None
    ]
    missing = [name for name, _, _, reading in checks if reading is None]
    if missing:
        return "lacks", f"no reading of {', '.join(missing)}"
    broken = [
        f"{name} {reading:.3g} (want {op} {threshold:g})"
        for name, op, threshold, reading in checks
        if (reading < threshold if op == ">=" else reading > threshold)
    ]
    if broken:
        return "fails", "; ".join(broken)
    held = ", ".join(f"{n} {r:.3g} {o} {t:g}" for n, o, t, r in checks)
    return "holds", held or f"{readings.windows} windows, no term to check"


def _fits(counts: list[list[int]], shape: tuple[int, ...]) -> bool:
    return len(counts) == shape[0] and all(len(row) == shape[1] for row in counts)


def _psi(reference: Reference, counts: np.ndarray) -> float | None:
    scores = [s for s in psi(reference, counts).tolist() if math.isfinite(s)]
    return max(scores, default=None)


def _failed(session: Session, devices: list[str], digest: str, since: datetime) -> list[str]:
    rows = session.execute(
        select(EventRow.device_id, EventRow.event).where(
            EventRow.device_id.in_(devices), EventRow.received_at >= since, EventRow.batch_id != ""
        )
    )
    failed = {
        device_id
        for device_id, event in rows
        if event.get("kind") in FAILED_KINDS and event.get("bundle_digest") == digest
    }
    return sorted(d for d in failed if d is not None)
