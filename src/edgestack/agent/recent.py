"""The windows the running model classified last, kept on the device so the hub can ask for
those worth a label: the ones the model was least sure of, and first those its offload
policy's gate found hard (hard-example mining), kept in a ring of their own so that they
outlive the ordinary windows around them.

Only what the hub asks for leaves the device (`DesiredState.send_windows`), a bounded
number per request; the rest is overwritten as new windows come.
"""

from collections import deque
from datetime import datetime

import numpy as np

from edgestack.protocol import MAX_REVIEW_WINDOWS, ReviewWindow

__all__ = ["RecentWindows", "hard_first"]


class RecentWindows:
    """The newest `size` classified windows, or a few more. Filled on the hot path's thread,
    one append per model call: rows are kept as they came, a call's together, and only taken
    apart and turned into messages when asked for."""

    def __init__(self, size: int = MAX_REVIEW_WINDOWS) -> None:
        self._size = size
        self._calls: deque[tuple[datetime, np.ndarray, list[str], np.ndarray]] = deque()
        self._held = 0

    def __len__(self) -> int:
        return self._held

    def add(
        self, at: datetime, rows: np.ndarray, labels: list[str], confidences: np.ndarray
    ) -> None:
        """Keep windows `rows` `(k, features)`, classified as `labels` with `confidences`."""
        self._calls.append((at, rows, labels, confidences))
        self._held += len(labels)
        while self._held - len(self._calls[0][2]) >= self._size:
            self._held -= len(self._calls.popleft()[2])

    def clear(self) -> None:
        """Forget every window: those of another model or input spec answer no request."""
        self._calls.clear()
        self._held = 0

    def least_confident(self, count: int) -> list[ReviewWindow]:
        """Up to `count` windows, least confident first; windows with a non-finite feature,
        which the hub would refuse, are left out."""
        windows = [
            (at, row, label, confidence)
            for at, rows, labels, confidences in self._calls
            for row, label, confidence in zip(rows, labels, confidences.tolist(), strict=True)
        ]
        finite = [w for w in windows if np.isfinite(w[1]).all()]
        chosen = sorted(finite, key=lambda w: w[3])[:count]
        return [
            ReviewWindow(
                at=at,
                # float32 values as their shortest text, as collected samples go up
                features=row.astype(np.float32).astype(str).astype(np.float64).tolist(),
                predicted=label,
                confidence=min(max(confidence, 0.0), 1.0),
            )
            for at, row, label, confidence in chosen
        ]


def hard_first(hard: RecentWindows, recent: RecentWindows, count: int) -> list[ReviewWindow]:
    """Up to `count` windows: those of `hard` (the offload gate's picks, whichever gate it
    uses), least confident first, then the least confident of `recent` not among them."""
    chosen = hard.least_confident(count)
    taken = {(w.at, tuple(w.features)) for w in chosen}
    # A hard window may be among the recent ones too: ask for enough to skip each once.
    others = recent.least_confident(count + len(chosen))
    rest = [w for w in others if (w.at, tuple(w.features)) not in taken]
    return chosen + rest[: count - len(chosen)]
