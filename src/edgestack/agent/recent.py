"""The windows the running model classified last, kept on the device so the hub can ask for
those worth a label: the ones the model was least sure of.

Only what the hub asks for leaves the device (`DesiredState.send_windows`), a bounded
number per request; the rest is overwritten as new windows come.
"""

from collections import deque
from datetime import datetime

import numpy as np

from edgestack.protocol import MAX_REVIEW_WINDOWS, ReviewWindow

__all__ = ["RecentWindows"]


class RecentWindows:
    """The newest `size` classified windows. Filled on the hot path's thread, a few
    microseconds a window: rows are kept as they came and only turned into messages when
    asked for."""

    def __init__(self, size: int = MAX_REVIEW_WINDOWS) -> None:
        self._windows: deque[tuple[datetime, np.ndarray, str, float]] = deque(maxlen=size)

    def __len__(self) -> int:
        return len(self._windows)

    def add(
        self, at: datetime, rows: np.ndarray, labels: list[str], confidences: np.ndarray
    ) -> None:
        """Keep windows `rows` `(k, features)`, classified as `labels` with `confidences`."""
        for row, label, confidence in zip(rows, labels, confidences.tolist(), strict=True):
            self._windows.append((at, row, label, confidence))

    def clear(self) -> None:
        """Forget every window: those of another model or input spec answer no request."""
        self._windows.clear()

    def least_confident(self, count: int) -> list[ReviewWindow]:
        """Up to `count` windows, least confident first; windows with a non-finite feature,
        which the hub would refuse, are left out."""
        finite = [w for w in self._windows if np.isfinite(w[1]).all()]
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
