"""Aggregates the hot path's work into one telemetry batch per interval: counts, not samples."""

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from edgestack.protocol import TelemetryBatch

__all__ = ["TelemetryWindow"]


class TelemetryWindow:
    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.start = datetime.now(UTC)
        self.windows = 0
        self.raw_bytes = 0
        self.bad_samples = 0
        self._predictions: Counter[str] = Counter()
        self._confidences: list[float] = []
        self._latencies_ms: list[float] = []

    def add_chunk(self, raw_bytes: int, bad_samples: int) -> None:
        self.raw_bytes += raw_bytes
        self.bad_samples += bad_samples

    def add_windows(self, count: int) -> None:
        self.windows += count

    def add_predictions(
        self, labels: Sequence[str], confidences: np.ndarray, latency_ms: float
    ) -> None:
        self._predictions.update(labels)
        self._confidences.extend(confidences.tolist())
        self._latencies_ms.append(latency_ms)

    def cut(self, seq: int, uplink_bytes: int, bundle_digest: str | None) -> TelemetryBatch:
        """Close the interval as batch number `seq` and start the next one."""
        latencies = np.asarray(self._latencies_ms)
        batch = TelemetryBatch(
            batch_id=uuid.uuid4(),
            seq=seq,
            start=self.start,
            end=datetime.now(UTC),
            windows=self.windows,
            predictions=dict(self._predictions),
            mean_confidence=float(np.mean(self._confidences)) if self._confidences else None,
            latency_ms_p50=float(np.percentile(latencies, 50)) if latencies.size else None,
            latency_ms_p95=float(np.percentile(latencies, 95)) if latencies.size else None,
            bad_samples=self.bad_samples,
            raw_bytes=self.raw_bytes,
            uplink_bytes=uplink_bytes,
            bundle_digest=bundle_digest,
        )
        self._reset()
        return batch
