"""What every sample step shares: samples as flat series, bad values counted, bad values held."""

from collections.abc import Sequence

import numpy as np

from edgestack.sensing import Chunk, Quality


def series(data: np.ndarray) -> np.ndarray:
    """Samples `(channels, n, *frame)` as one row per channel and frame element, `(rows, n)`."""
    rows = data.shape[0] * int(np.prod(data.shape[2:]))
    return np.moveaxis(data, 1, -1).reshape(rows, data.shape[1])


def unseries(values: np.ndarray, like: Chunk) -> np.ndarray:
    """Rows from `series` back into `like`'s layout, float32 `(channels, n, *frame)`."""
    shaped = values.reshape(len(like.channels), *like.frame, values.shape[1])
    return np.moveaxis(shaped, -1, 1).astype(np.float32)


def count_bad(
    values: np.ndarray,
    quality: Quality,
    channels: Sequence[str],
    low: float | None = None,
    high: float | None = None,
) -> np.ndarray:
    """Mask of the good values of rows `values`; each bad one counted as `nan`, `inf` or
    `out_of_range` (outside `[low, high]`), with the first of each as an example."""
    finite = np.isfinite(values)
    good = finite.copy()
    if low is not None:
        good &= ~(finite & (values < low))
    if high is not None:
        good &= ~(finite & (values > high))
    if good.all():
        return good
    per_row = values.shape[0] // max(len(channels), 1)
    for reason, mask in (
        ("nan", np.isnan(values)),
        ("inf", np.isinf(values)),
        ("out_of_range", finite & ~good),
    ):
        if mask.any():
            row, column = np.argwhere(mask)[0]
            example = f"{channels[row // per_row]}[{column}] = {float(values[row, column])!r}"
            quality.count(reason, int(mask.sum()), example=example)
    return good


class Hold:
    """Bad values replaced by the last good value of their row, remembered across chunks; `fill`
    stands in until a row has had a good value."""

    def __init__(self, fill: float = 0.0) -> None:
        self.fill = fill
        self._last: np.ndarray | None = None

    def __call__(self, values: np.ndarray, good: np.ndarray) -> np.ndarray:
        if self._last is None or self._last.shape[0] != values.shape[0]:
            self._last = np.full(values.shape[0], self.fill, dtype=values.dtype)
        n = values.shape[1]
        if n == 0:
            return values
        if good.all():
            self._last = values[:, -1].copy()
            return values
        source = np.maximum.accumulate(np.where(good, np.arange(n), -1), axis=1)
        extended = np.concatenate([self._last[:, None].astype(values.dtype), values], axis=1)
        held = np.take_along_axis(extended, source + 1, axis=1)
        self._last = held[:, -1].copy()
        return held

    def reset(self) -> None:
        self._last = None
