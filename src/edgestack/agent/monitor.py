"""Monitoring of the running model on the device: what the hot path hands it per model call
goes into the `monitoring` library's summaries, and each telemetry cut takes them as one
`MonitorReport`, sketches and scores, never rows.

    monitor = ModelMonitor(ref, labels, manifest.reference)
    monitor.add(latency_s, probabilities, rows, windows)   # the hot path's thread, per call
    report = monitor.take()                                # the telemetry cut's thread

A model swap builds a new monitor: its labels, reference and detectors' levels are its own.
"""

import math
import threading

import numpy as np
from pydantic import ValidationError

from edgestack.bundle import Reference
from edgestack.monitoring import (
    DETECTORS,
    DriftSketch,
    EnergyScore,
    Interval,
    ks,
    mean_square,
    psi,
)
from edgestack.protocol import BundleRef, DriftReport, MonitorReport
from edgestack.sensing import Quality

__all__ = ["DEFAULT_DETECTOR", "WATCHED", "ModelMonitor"]

DEFAULT_DETECTOR = "page_hinkley"
WATCHED = ("confidence", "anomaly")
"""The signals a change detector watches, per window: the chosen label's probability, and the
sensor-stream anomaly score; `MonitorReport.changes` counts alarms under these names."""
# Windows held back for the telemetry cut, on its own thread, to feed to the interval, the
# sketch, the detectors and the anomaly score: the hot path's thread only keeps them. Past
# this many (a long telemetry interval) the hot path feeds them itself, so memory stays bounded.
_HOLD_WINDOWS = 512


class ModelMonitor:
    """Everything monitoring keeps of one running model (`ref`) since the last `take`.

    `add` and `take` may run on different threads: a lock keeps a cut from splitting a call.
    Bad values the sketches and detectors skip are counted in `quality`.
    """

    def __init__(
        self,
        ref: BundleRef,
        labels: list[str],
        reference: Reference | None,
        detector: str = DEFAULT_DETECTOR,
    ) -> None:
        self.ref = ref
        self.quality = Quality()
        self._lock = threading.Lock()
        self._interval = Interval(labels)
        self._reference = reference if reference is not None and _sendable(reference) else None
        self._sketch = DriftSketch(self._reference) if self._reference is not None else None
        self._energy = EnergyScore()
        self._detectors = {signal: DETECTORS.build(detector) for signal in WATCHED}
        self._latencies: list[float] = []
        self._rows: list[np.ndarray] = []
        self._probabilities: list[np.ndarray] = []
        self._energies: list[np.ndarray] = []
        self._pending = 0
        self._reset_signals()

    def _reset_signals(self) -> None:
        self._changes = dict.fromkeys(WATCHED, 0)
        self._anomaly_max = 0.0
        self._anomaly_sum = 0.0
        self._anomaly_windows = 0

    def add(
        self,
        latency_s: float,
        probabilities: np.ndarray,
        rows: np.ndarray,
        windows: np.ndarray | None,
    ) -> None:
        """One model call that took `latency_s` on feature `rows` `(k, features)` and gave
        `probabilities` `(k, labels)`; `windows` are the samples the rows came from,
        `(k, channels, size, ...)`, or None where the pipeline does not say.

        The interval, the sketch, the detectors and the anomaly score take them when `take`
        cuts the interval, on its thread, or once `_HOLD_WINDOWS` are held."""
        # The energy is taken now, while the windows are at hand; they are not kept.
        energy = mean_square(windows) if windows is not None and len(windows) == len(rows) else None
        with self._lock:
            self._latencies.append(latency_s)
            self._rows.append(rows)
            self._probabilities.append(probabilities)
            if energy is not None:
                self._energies.append(energy)
            self._pending += len(rows)
            if self._pending >= _HOLD_WINDOWS:
                self._flush()

    def _flush(self) -> None:
        """Feed what `add` held back to the interval, the sketch, the detectors and the
        anomaly score."""
        if not self._latencies:
            return
        probabilities = np.concatenate(self._probabilities)
        self._interval.add_calls(np.array(self._latencies), probabilities)
        if self._sketch is not None:
            self._sketch.update(np.concatenate(self._rows), self.quality)
        confidence = probabilities.max(axis=1)
        detectors = self._detectors
        self._changes["confidence"] += len(detectors["confidence"].update(confidence, self.quality))
        if self._energies:
            scores = self._energy.update_mean_square(np.concatenate(self._energies))
            self._changes["anomaly"] += len(detectors["anomaly"].update(scores, self.quality))
            self._anomaly_max = max(self._anomaly_max, float(scores.max()))
            self._anomaly_sum += float(scores.sum())
            self._anomaly_windows += len(scores)
        self._latencies, self._rows, self._probabilities, self._energies = [], [], [], []
        self._pending = 0

    def take(self, now: float | None = None) -> MonitorReport:
        """What was seen since the last take; starts the next interval. `now` is a
        `time.monotonic()` reading, for tests."""
        with self._lock:
            self._flush()
            summary = self._interval.take(now)
            counts = self._sketch.take() if self._sketch is not None else None
            changes, windows = self._changes, self._anomaly_windows
            anomaly_max, anomaly_sum = self._anomaly_max, self._anomaly_sum
            self._reset_signals()
        drift = None
        if counts is not None and self._reference is not None:
            drift = DriftReport(
                counts=counts.tolist(),
                psi=_scores(psi(self._reference, counts)),
                ks=_scores(ks(self._reference, counts)),
            )
        return MonitorReport(
            latency=summary.latency.sparse(),
            p50_ms=_finite(summary.p50_ms),
            p95_ms=_finite(summary.p95_ms),
            p99_ms=_finite(summary.p99_ms),
            throughput=summary.throughput,
            cpu_share=max(summary.cpu_s, 0.0) / summary.seconds,
            rss_bytes=summary.rss_bytes,
            confidence=summary.confidence,
            drift=drift,
            changes=changes,
            anomaly_max=anomaly_max if windows else None,
            anomaly_mean=anomaly_sum / windows if windows else None,
        )


def _sendable(reference: Reference) -> bool:
    """Whether a sketch of `reference` fits a `DriftReport`: one of more features or bins than
    the wire bounds is not kept, or every telemetry cut would fail with it."""
    features, bins = len(reference.shares), len(reference.shares[0])
    try:
        DriftReport(counts=[[0] * bins] * features, psi=[None] * features, ks=[None] * features)
    except ValidationError:
        return False
    return True


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _scores(values: np.ndarray) -> list[float | None]:
    """Per-feature scores for the wire: a feature that saw no rows has none."""
    return [v if math.isfinite(v) else None for v in values.tolist()]
