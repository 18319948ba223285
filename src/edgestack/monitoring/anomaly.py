"""An anomaly score on the sensor streams themselves, before any model: how far each window's
energy lies from what the stream has shown so far.

    score = EnergyScore()
    scores = score.update(windows, quality)    # (k,) largest |z| over the channels
"""

import math

import numpy as np

from edgestack.sensing import Quality

__all__ = ["EnergyScore"]


class EnergyScore:
    """Per window and channel the log of the RMS, against its exponentially weighted mean and
    variance with half-life `half_life` windows; the score is the largest |z| over channels,
    0 during the first `warmup` windows. A window's own energy joins the statistics after it
    is scored, one window at a time, so any chunking gives the same scores.
    """

    def __init__(self, half_life: float = 200.0, warmup: int = 20) -> None:
        if half_life <= 0 or warmup < 2:
            raise ValueError("half_life must be > 0 and warmup >= 2")
        self._alpha = 1.0 - 0.5 ** (1.0 / half_life)
        self.warmup = warmup
        self._n = 0
        self._mean: np.ndarray | None = None
        self._var: np.ndarray | None = None

    def update(self, windows: np.ndarray, quality: Quality) -> np.ndarray:
        """Scores of windows `(k, channels, size, ...)`; non-finite samples are counted in
        `quality` and left out of the energy, and a channel with none finite scores 0."""
        k, channels = windows.shape[:2]
        flat = windows.reshape(k, channels, math.prod(windows.shape[2:])).astype(np.float64)
        finite = np.isfinite(flat)
        if not finite.all():
            quality.count("anomaly_nonfinite", int((~finite).sum()))
        seen = finite.sum(axis=2)
        power = np.where(finite, flat, 0.0) ** 2
        energy = 0.5 * np.log(power.sum(axis=2) / np.maximum(seen, 1) + 1e-12)
        scores = np.zeros(k)
        for i in range(k):
            scores[i] = self._score(energy[i], seen[i] > 0)
        return scores

    def _score(self, energy: np.ndarray, valid: np.ndarray) -> float:
        if self._mean is None or self._var is None:
            self._mean, self._var = energy.copy(), np.zeros_like(energy)
        self._n += 1
        z = np.abs(energy - self._mean) / np.sqrt(self._var + 1e-12)
        score = float(np.where(valid, z, 0.0).max()) if self._n > self.warmup else 0.0
        # early on the mean moves fast (1/n), later at the half-life's pace
        alpha = max(self._alpha, 1.0 / self._n)
        step = np.where(valid, energy - self._mean, 0.0)
        self._mean = self._mean + alpha * step
        self._var = (1 - alpha) * (self._var + alpha * step**2)
        return score
