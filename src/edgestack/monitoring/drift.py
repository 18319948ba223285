"""Input drift: reference statistics taken from the training rows, a live sketch of the same
bins filled from the rows a device sees, and PSI and KS scores between the two.

    ref = reference(train_rows)               # stored in the bundle's manifest
    live = DriftSketch(ref)
    live.update(rows, quality)                # per window, cheap: one comparison and a bincount
    psi(ref, live.counts), ks(ref, live.counts)   # one score per feature

Only bin counts go up from a device, never rows; sketches of the same reference add up.
"""

import numpy as np

from edgestack.bundle import Reference
from edgestack.sensing import Quality

__all__ = ["BINS", "DriftSketch", "ks", "psi", "reference"]

BINS = 10
"""Bins per feature: nine of equal shares of the training rows, and one above them all."""

_FLOOR = 1e-4  # the share an empty bin counts as, so PSI stays finite; 1/10 of a 1000-row bin


def reference(rows: np.ndarray, *, bins: int = BINS) -> Reference:
    """Reference statistics of feature rows `(k, features)`: per feature the inner edges of
    `bins - 1` quantile bins and one above the largest value, and the share of rows in each.
    Non-finite values are left out.

    Raises `ValueError` for rows that are not two-dimensional, a feature with no finite value,
    or fewer than 3 bins.
    """
    if bins < 3:
        raise ValueError(f"bins: {bins}; give at least 3")
    if rows.ndim != 2 or len(rows) == 0:
        raise ValueError(f"rows: expected a (k, features) array with k >= 1, got {rows.shape}")
    edges, shares = [], []
    for i, column in enumerate(rows.T.astype(np.float64)):
        finite = column[np.isfinite(column)]
        if not finite.size:
            raise ValueError(f"feature {i} has no finite value in the training rows")
        # six significant digits keep the manifest small; the shares are of the rounded edges
        quantiles = np.quantile(finite, np.arange(1, bins - 1) / (bins - 1))
        # the last edge lies just above the largest training value, so values beyond the
        # training range land in a bin of their own even where the feature barely varies
        top = float(np.nextafter(finite.max(), np.inf))
        inner = [*(min(float(f"{e:.6g}"), top) for e in quantiles), top]
        counts = np.bincount(np.searchsorted(inner, finite, side="right"), minlength=bins)
        edges.append(inner)
        shares.append([round(float(c), 6) for c in counts / finite.size])
    return Reference(rows=len(rows), edges=edges, shares=shares)


class DriftSketch:
    """Counts of live rows per reference bin and feature, `counts` `(features, bins)`.

    `update` costs one broadcast comparison and a bincount per call, whatever the number of
    features; `take` hands the counts over and starts a new interval.
    """

    def __init__(self, ref: Reference) -> None:
        self._edges = np.array(ref.edges, dtype=np.float64)
        self.features, inner = self._edges.shape
        self.bins = inner + 1
        self._offsets = np.arange(self.features) * self.bins
        self.counts = np.zeros((self.features, self.bins), dtype=np.int64)

    def update(self, rows: np.ndarray, quality: Quality) -> None:
        """Add feature rows `(k, features)`; a row with a non-finite value is counted in
        `quality` as `drift_nonfinite` and left out."""
        if rows.ndim != 2 or rows.shape[1] != self.features:
            raise ValueError(
                f"rows: expected (k, {self.features}) feature rows, got {rows.shape}; "
                "give the rows of the model the reference came with"
            )
        finite = np.isfinite(rows).all(axis=1)
        if not finite.all():
            quality.count("drift_nonfinite", int((~finite).sum()))
            rows = rows[finite]
        index = (rows[:, :, None] >= self._edges[None]).sum(axis=2) + self._offsets
        self.counts += np.bincount(index.ravel(), minlength=self.counts.size).reshape(
            self.counts.shape
        )

    def take(self) -> np.ndarray:
        """The counts since the last take; starts a new interval."""
        counts, self.counts = self.counts, np.zeros_like(self.counts)
        return counts


def _shares(ref: Reference, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    expected = np.array(ref.shares, dtype=np.float64)
    if counts.shape != expected.shape:
        raise ValueError(f"counts: expected shape {expected.shape}, got {counts.shape}")
    totals = counts.sum(axis=1, keepdims=True)
    actual = counts / np.maximum(totals, 1)
    return expected, actual, totals[:, 0] > 0


def psi(ref: Reference, counts: np.ndarray) -> np.ndarray:
    """Population stability index per feature of live `counts` against `ref`: 0 for the same
    distribution, above 0.2 commonly read as a shift. NaN for a feature with no live rows.
    Over few rows it is noisy (an empty bin alone adds about 0.7): read it over a few hundred."""
    expected, actual, seen = _shares(ref, counts)
    e, a = np.maximum(expected, _FLOOR), np.maximum(actual, _FLOOR)
    scores = ((a - e) * np.log(a / e)).sum(axis=1)
    return np.where(seen, scores, np.nan)


def ks(ref: Reference, counts: np.ndarray) -> np.ndarray:
    """Kolmogorov-Smirnov distance per feature read at the reference's bin edges: the largest
    gap between the two cumulative shares, a lower bound of the distance on raw values. NaN
    for a feature with no live rows."""
    expected, actual, seen = _shares(ref, counts)
    gaps = np.abs(np.cumsum(expected, axis=1) - np.cumsum(actual, axis=1)).max(axis=1)
    # the shares a manifest stores are rounded: their sum may pass 1 by a few millionths
    return np.where(seen, np.minimum(gaps, 1.0), np.nan)
