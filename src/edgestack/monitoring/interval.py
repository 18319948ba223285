"""What a model did over an interval: a latency histogram with quantiles, throughput, the
distributions of the classes it chose and of its confidence, and the CPU time and memory of
the process that ran it.

    interval = Interval(labels=["ok", "worn"])
    interval.add(latency_s, probabilities)     # per window
    summary = interval.take(now)               # summary.p99_ms, summary.throughput, ...

Histograms have fixed log-spaced buckets, the same in every process, so two of them add up
and one goes over the wire as its few non-empty buckets.
"""

import bisect
import math
import os
import resource
import sys
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["CONFIDENCE_BINS", "Interval", "LatencyHistogram", "Summary"]

_PER_DECADE = 20  # buckets 12 % apart: a quantile read from them is within 6 % of the true one
_LOW_S = 1e-6  # the first bucket's lower edge; faster calls count in it
_DECADES = 7  # up to 10 s; slower calls count in the last bucket
CONFIDENCE_BINS = 10
"""Bins of the top-class probability, over [0, 1]."""


class LatencyHistogram:
    """Counts of latencies in fixed log-spaced buckets from 1 us to 10 s."""

    BUCKETS = _PER_DECADE * _DECADES
    _UPPER = _LOW_S * 10.0 ** (np.arange(1, BUCKETS + 1) / _PER_DECADE)
    _EDGES = _UPPER.tolist()

    def __init__(self) -> None:
        self.counts = np.zeros(self.BUCKETS, dtype=np.int64)

    def add(self, seconds: np.ndarray | float) -> None:
        """Count latencies in seconds; a non-finite or negative one is a caller's bug and
        raises `ValueError`."""
        if isinstance(seconds, float | int):  # one call's latency, the usual case: no arrays
            if not 0 <= seconds < math.inf:
                raise ValueError(f"latencies must be finite and >= 0 seconds, got {seconds}")
            self.counts[min(bisect.bisect_left(self._EDGES, seconds), self.BUCKETS - 1)] += 1
            return
        values = np.atleast_1d(np.asarray(seconds, dtype=np.float64))
        if not (np.isfinite(values).all() and (values >= 0).all()):
            raise ValueError(f"latencies must be finite and >= 0 seconds, got {values}")
        index = np.minimum(np.searchsorted(self._UPPER, values), self.BUCKETS - 1)
        self.counts += np.bincount(index, minlength=self.BUCKETS)

    def merge(self, other: "LatencyHistogram") -> None:
        """Add `other`'s counts to these."""
        self.counts += other.counts

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def quantile(self, q: float) -> float:
        """The `q` quantile in seconds, read as the upper edge of its bucket; NaN when empty."""
        if not 0 <= q <= 1:
            raise ValueError(f"q: expected a share in [0, 1], got {q}")
        total = self.total
        if not total:
            return float("nan")
        bucket = int(np.searchsorted(np.cumsum(self.counts), max(q * total, 1)))
        return float(self._UPPER[bucket])

    def sparse(self) -> dict[int, int]:
        """The non-empty buckets, index to count: what goes over the wire."""
        return {int(i): int(self.counts[i]) for i in np.flatnonzero(self.counts)}

    @classmethod
    def from_sparse(cls, buckets: dict[int, int]) -> "LatencyHistogram":
        """The histogram `sparse` gave; `ValueError` for a bucket or count out of range."""
        histogram = cls()
        for index, count in buckets.items():
            if not 0 <= index < cls.BUCKETS or count < 0:
                raise ValueError(
                    f"bucket {index}: {count}; buckets run 0..{cls.BUCKETS - 1}, counts >= 0"
                )
            histogram.counts[index] = count
        return histogram


@dataclass(frozen=True)
class Summary:
    """One interval of predictions: its length, the windows predicted and per second, quantiles
    of the latency per model call, and the count of each chosen class and of top-class
    confidences per bin; the process's CPU seconds in the interval (over `seconds`: the share
    of one core) and its resident memory at the end."""

    seconds: float
    predictions: int
    throughput: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    latency: LatencyHistogram
    classes: dict[str, int]
    confidence: list[int]
    cpu_s: float
    rss_bytes: int


class Interval:
    """Collects predictions until `take` summarises them and starts the next interval."""

    def __init__(self, labels: list[str], *, now: float | None = None) -> None:
        self.labels = labels
        self._reset(time.monotonic() if now is None else now)

    def _reset(self, now: float) -> None:
        self._start = now
        self._cpu = time.process_time()
        self._latency = LatencyHistogram()
        self._classes = [0] * len(self.labels)
        self._confidence = [0] * CONFIDENCE_BINS

    def add(self, latency_s: float, probabilities: np.ndarray) -> None:
        """Count one model call that took `latency_s` and gave `probabilities` `(k, labels)`."""
        if probabilities.ndim != 2 or probabilities.shape[1] != len(self.labels):
            raise ValueError(
                f"probabilities: expected (k, {len(self.labels)}), got {probabilities.shape}"
            )
        self._latency.add(latency_s)
        # a few windows per call: a Python loop beats a bincount's set-up
        for row in probabilities.tolist():
            top = max(row)
            self._classes[row.index(top)] += 1
            confidence = int(top * CONFIDENCE_BINS) if top == top else 0  # NaN: the lowest bin
            self._confidence[min(max(confidence, 0), CONFIDENCE_BINS - 1)] += 1

    def add_calls(self, latencies_s: np.ndarray, probabilities: np.ndarray) -> None:
        """Count several model calls at once, as `add` one by one would: their latencies
        `(calls,)`, and the probabilities of all their windows together `(k, labels)`. For a
        caller that holds calls back to count a batch in a few numpy calls."""
        if probabilities.ndim != 2 or probabilities.shape[1] != len(self.labels):
            raise ValueError(
                f"probabilities: expected (k, {len(self.labels)}), got {probabilities.shape}"
            )
        self._latency.add(latencies_s)
        top = probabilities.max(axis=1)
        classes = np.bincount(probabilities.argmax(axis=1), minlength=len(self.labels))
        # NaN counts in the lowest bin, as in `add`
        bins = np.clip(np.nan_to_num(top * CONFIDENCE_BINS, nan=0.0), 0, CONFIDENCE_BINS - 1)
        confidence = np.bincount(bins.astype(np.int64), minlength=CONFIDENCE_BINS)
        for i, n in enumerate(classes.tolist()):
            self._classes[i] += n
        for i, n in enumerate(confidence.tolist()):
            self._confidence[i] += n

    def take(self, now: float | None = None) -> Summary:
        """The summary since the interval began; the next one starts now."""
        now = time.monotonic() if now is None else now
        seconds = max(now - self._start, 1e-9)
        latency, windows = self._latency, sum(self._classes)
        summary = Summary(
            seconds=seconds,
            predictions=windows,
            throughput=windows / seconds,
            p50_ms=latency.quantile(0.5) * 1e3,
            p95_ms=latency.quantile(0.95) * 1e3,
            p99_ms=latency.quantile(0.99) * 1e3,
            latency=latency,
            classes={label: int(n) for label, n in zip(self.labels, self._classes, strict=True)},
            confidence=self._confidence,
            cpu_s=time.process_time() - self._cpu,
            rss_bytes=_rss_bytes(),
        )
        self._reset(now)
        return summary


def _rss_bytes() -> int:
    """This process's resident memory now; its peak where /proc is not there to read."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, else KiB
