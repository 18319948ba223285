"""Aggregates the hot path's work into one telemetry batch per interval: counts, not samples."""

import threading
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from edgestack.protocol import BadExample, MonitorReport, TelemetryBatch
from edgestack.sensing import Quality

__all__ = ["TelemetryWindow"]

_KEEP_EXAMPLES = 20  # per interval: enough to see what went wrong, too few to flood the uplink


class TelemetryWindow:
    """Counts of one interval. The hot path adds a chunk's counts holding `lock`, and `cut`
    takes it too, so an interval closed from another thread never splits a chunk."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        self.start = datetime.now(UTC)
        self.windows = 0
        self.raw_bytes = 0
        self.chunks = 0
        self.failed_chunks = 0
        self._bad: Counter[str] = Counter()
        self._bad_examples: list[BadExample] = []
        self._predictions: Counter[str] = Counter()
        self._confidences: list[float] = []
        self._latencies_ms: list[float] = []

    def add_chunk(self, raw_bytes: int, windows: int, *, failed: bool = False) -> None:
        """A chunk of `raw_bytes` that completed `windows`, or whose steps or model raised."""
        self.raw_bytes += raw_bytes
        self.windows += windows
        self.chunks += 1
        self.failed_chunks += failed

    def add_bad_input(self, quality: Quality) -> None:
        """Take what `quality` counted since the last call into this interval."""
        counts, examples = quality.take()
        if not counts:
            return
        self._bad.update(counts)
        room = _KEEP_EXAMPLES - len(self._bad_examples)
        self._bad_examples.extend(BadExample(reason=r, example=e) for r, e in examples[:room])

    def add_predictions(
        self, labels: Sequence[str], confidences: np.ndarray, latency_ms: float
    ) -> None:
        for label in labels:  # a window or two a chunk: cheaper than Counter.update's checks
            self._predictions[label] += 1
        self._confidences.extend(confidences.tolist())
        self._latencies_ms.append(latency_ms)

    def cut(
        self,
        seq: int,
        uplink_bytes: int,
        bundle_digest: str | None,
        *,
        outbox_dropped: int = 0,
        dead_lettered: int = 0,
        outbox_pending: int = 0,
        monitoring: MonitorReport | None = None,
    ) -> TelemetryBatch:
        """Close the interval as batch number `seq` and start the next one. The outbox's
        dropped and dead-lettered counts are totals since the device was set up, so a lost
        batch loses none of them; `outbox_pending` is its depth now. `monitoring` is what the
        running model's monitor saw over the interval."""
        with self.lock:
            return self._cut(
                seq,
                uplink_bytes,
                bundle_digest,
                outbox_dropped,
                dead_lettered,
                outbox_pending,
                monitoring,
            )

    def _cut(
        self,
        seq: int,
        uplink_bytes: int,
        bundle_digest: str | None,
        outbox_dropped: int,
        dead_lettered: int,
        outbox_pending: int,
        monitoring: MonitorReport | None,
    ) -> TelemetryBatch:
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
            bad_input=dict(self._bad),
            bad_examples=self._bad_examples,
            raw_bytes=self.raw_bytes,
            uplink_bytes=uplink_bytes,
            bundle_digest=bundle_digest,
            chunks=self.chunks,
            failed_chunks=self.failed_chunks,
            outbox_dropped=outbox_dropped,
            dead_lettered=dead_lettered,
            outbox_pending=outbox_pending,
            monitoring=monitoring,
        )
        self._reset()
        return batch
