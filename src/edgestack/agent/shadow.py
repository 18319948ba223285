"""A rollout's candidate run in shadow: on the same feature rows as the running model, after
it, on the hot path's thread, its predictions compared and counted and acted on by nothing.

    shadow = Shadow(candidate, bundle.manifest.reference)
    shadow.run(rows, labels)       # after the running model chose `labels` for `rows`
    report = shadow.take()         # at each telemetry cut, from another thread

A candidate that raises is counted in `failures` and never reaches the running model, its
rules or its events.
"""

import math
import threading
import time
from collections import Counter

import numpy as np

from edgestack.agent.hotpath import LoadedModel
from edgestack.bundle import Reference
from edgestack.monitoring import DriftSketch, LatencyHistogram, ks, psi
from edgestack.protocol import DriftReport, ShadowReport
from edgestack.sensing import Quality

__all__ = ["Shadow"]


class Shadow:
    """Counts of one telemetry interval of `model` beside the running one. `run` is called by
    the hot path's thread, `take` by the telemetry cut's: a lock keeps them apart."""

    def __init__(self, model: LoadedModel, reference: Reference | None) -> None:
        self.model = model
        self._reference = reference
        self._sketch = None if reference is None else DriftSketch(reference)
        # Rows the sketch left out (non-finite) are the running model's bad input already.
        self._ignored = Quality()
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._windows = 0
        self._agreed = 0
        self._confidence = 0.0
        self._failures = 0
        self._latency = LatencyHistogram()
        self._predictions: Counter[str] = Counter()

    def run(self, rows: np.ndarray, labels: list[str]) -> None:
        """Classify `rows`, for which the running model chose `labels`, and count the result."""
        started = time.perf_counter()
        try:
            indices, probabilities = self.model.predictor.predict(rows)
            seconds = time.perf_counter() - started
            chosen = [self.model.labels[i] for i in indices.tolist()]
            agreed = sum(a == b for a, b in zip(chosen, labels, strict=True))
            confidence = float(np.nansum(probabilities.max(axis=1)))
            if self._sketch is not None:
                with self._lock:
                    self._sketch.update(rows, self._ignored)
        except Exception:  # a candidate's failure is a reading of the candidate, no more
            with self._lock:
                self._failures += 1
            return
        with self._lock:
            self._windows += len(chosen)
            self._agreed += agreed
            self._confidence += confidence
            self._latency.add(seconds)
            self._predictions.update(chosen)

    def take(self) -> ShadowReport:
        """What the candidate did since the last take; starts a new interval."""
        with self._lock:
            windows, agreed, failures = self._windows, self._agreed, self._failures
            confidence, latency, predictions = self._confidence, self._latency, self._predictions
            counts = None if self._sketch is None else self._sketch.take()
            self._reset()
        self._ignored.take()
        p99 = latency.quantile(0.99) * 1000 if latency.total else None
        drift = self._drift(counts)
        return ShadowReport(
            bundle=self.model.ref,
            windows=windows,
            agreed=agreed,
            mean_confidence=min(confidence / windows, 1.0) if windows else None,
            latency=latency.sparse(),
            p99_ms=p99,
            failures=failures,
            predictions=dict(predictions),
            drift_psi=max((p for p in drift.psi if p is not None), default=None) if drift else None,
            drift=drift,
        )

    def _drift(self, counts: np.ndarray | None) -> DriftReport | None:
        if counts is None or self._reference is None or not counts.sum():
            return None
        return DriftReport(
            counts=counts.tolist(),
            psi=_finite(psi(self._reference, counts)),
            ks=_finite(ks(self._reference, counts)),
        )


def _finite(scores: np.ndarray) -> list[float | None]:
    return [s if math.isfinite(s) else None for s in scores.tolist()]
