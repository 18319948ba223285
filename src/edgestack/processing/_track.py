"""Samples at increasing times, read back at other times by linear interpolation."""

import numpy as np


class Track:
    """The recent samples of one stream: times `(m,)` in seconds from an origin the owner picks
    (small numbers keep float64 exact enough for kHz grids), values `(rows, m)`."""

    def __init__(self, rows: int) -> None:
        self.times = np.empty(0)
        self.values = np.empty((rows, 0))

    @property
    def end(self) -> float:
        """The time of the newest sample; -inf while there is none."""
        return float(self.times[-1]) if len(self.times) else -np.inf

    def add(self, times: np.ndarray, values: np.ndarray) -> None:
        self.times = np.concatenate([self.times, times])
        self.values = np.concatenate([self.values, values], axis=1)

    def at(self, grid: np.ndarray) -> np.ndarray:
        """Values at times `grid`, each within the span held, `(rows, len(grid))`."""
        if len(self.times) == 1:
            return np.repeat(self.values, len(grid), axis=1)
        i = np.clip(np.searchsorted(self.times, grid, side="right") - 1, 0, len(self.times) - 2)
        before, after = self.times[i], self.times[i + 1]
        weight = (grid - before) / (after - before)
        return self.values[:, i] + (self.values[:, i + 1] - self.values[:, i]) * weight

    def forget_before(self, time: float) -> None:
        """Keep only what reading at `time` or later still needs."""
        first = max(int(np.searchsorted(self.times, time, side="right")) - 1, 0)
        self.times = self.times[first:]
        self.values = self.values[:, first:]
