"""The `clean` step: NaN, infinite and out-of-range samples counted and repaired or dropped."""

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from edgestack.processing._series import Hold, count_bad, series, unseries
from edgestack.processing.step import STEPS
from edgestack.sensing import Chunk, Quality

__all__ = ["Clean"]


@STEPS.register("clean")
class Clean:
    """Counts every NaN, infinite and out-of-range value (`nan`, `inf`, `out_of_range`) and:

    - `drop`: removes each sample in which any value is bad; the output carries `timestamps` for
      the samples kept (put a `resample` after it to regain a regular grid);
    - `interpolate`: draws a line from the last good value to the next one, holding samples back
      until that one arrives; a run of more than `max_gap` bad values holds the last good value
      instead, so no more than `max_gap` samples are ever held back;
    - `clip`: brings out-of-range values to the nearest bound and holds the last good value in
      place of NaN and infinity.

    Before a row's first good value, `interpolate` uses the next good value and `clip` uses 0
    (brought within the bounds). Samples may be frames `(channels, n, *frame)`; each element of
    a frame is cleaned as its own series.

        clean = STEPS.build("clean", {"policy": "clip", "low": -16.0, "high": 16.0})
    """

    def __init__(
        self,
        policy: Literal["drop", "interpolate", "clip"] = "interpolate",
        low: float | None = None,
        high: float | None = None,
        max_gap: Annotated[int, Field(ge=0)] = 64,
    ) -> None:
        if low is not None and high is not None and not low < high:
            raise ValueError(f"clean: low {low} is not below high {high}; swap them")
        self.policy = policy
        self.low = low
        self.high = high
        self.max_gap = max_gap
        fill = float(
            np.clip(0.0, -np.inf if low is None else low, np.inf if high is None else high)
        )
        self._hold = Hold(fill)
        self._gaps = _Gaps(max_gap, fill)

    def push(self, chunk: Chunk, quality: Quality) -> Chunk:
        values = series(chunk.data)
        good = count_bad(values, quality, chunk.channels, self.low, self.high)
        if self.policy == "clip":
            bounded = np.clip(values, self.low, self.high) if self._bounded else values
            return chunk.with_data(unseries(self._hold(bounded, np.isfinite(values)), chunk))
        if self.policy == "drop":
            keep = good.all(axis=0)
            return chunk.with_data(unseries(values[:, keep], chunk), timestamps=chunk.times()[keep])
        out, times = self._gaps(values, good, chunk.times())
        t0 = float(times[0]) if len(times) else chunk.t0
        stamps = times if chunk.timestamps is not None else None
        return chunk.with_data(unseries(out, chunk), t0=t0, timestamps=stamps)

    @property
    def _bounded(self) -> bool:
        return self.low is not None or self.high is not None

    def reset(self) -> None:
        self._hold.reset()
        self._gaps.reset()


class _Gaps:
    """Linear interpolation over runs of bad values, holding back the samples of a run until it
    ends; the decision for a sample depends only on the run it is in, never on chunk edges."""

    def __init__(self, max_gap: int, fill: float) -> None:
        self.max_gap = max_gap
        self.fill = fill
        self.reset()

    def reset(self) -> None:
        self._left: np.ndarray | None = None  # last good value per row, NaN before the first
        self._since: np.ndarray | None = None  # samples emitted after that good value
        self._values = np.empty((0, 0))
        self._good = np.empty((0, 0), dtype=bool)
        self._times = np.empty(0)

    def __call__(
        self, values: np.ndarray, good: np.ndarray, times: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        rows = values.shape[0]
        if self._left is None or self._left.shape[0] != rows:
            self.reset()
            self._left = np.full(rows, np.nan)
            self._since = np.zeros(rows, dtype=np.int64)
            self._values = np.empty((rows, 0))
            self._good = np.empty((rows, 0), dtype=bool)
        assert self._since is not None
        buffer = np.concatenate([self._values, values], axis=1)
        ok = np.concatenate([self._good, good], axis=1)
        stamps = np.concatenate([self._times, times])
        m = buffer.shape[1]
        position = np.arange(m)
        # Positions before the buffer count back to the last good value, so a run that began in
        # an earlier chunk is measured and interpolated whole.
        before = -1 - self._since[:, None]
        prev = np.maximum.accumulate(np.where(ok, position, before), axis=1)
        nxt = np.minimum.accumulate(np.where(ok, position, m)[:, ::-1], axis=1)[:, ::-1]
        known = nxt < m
        storm = ~ok & (nxt - prev - 1 > self.max_gap)
        waiting = ~ok & ~storm & ~known
        stop = int(np.argmax(waiting.any(axis=0))) if waiting.any() else m

        at_prev = np.take_along_axis(buffer, np.clip(prev, 0, None), axis=1)
        left = np.where(prev >= 0, at_prev, self._left[:, None])
        right = np.take_along_axis(buffer, np.clip(nxt, None, m - 1), axis=1)
        with np.errstate(invalid="ignore"):
            line = left + (right - left) * (position - prev) / (nxt - prev)
        line = np.where(np.isnan(left), right, line)
        held = np.where(np.isnan(left), self.fill, left)
        out = np.where(ok, buffer, np.where(storm, held, line))[:, :stop]

        if stop:
            last = prev[:, stop - 1]
            self._left = np.where(last >= 0, at_prev[:, stop - 1], self._left)
            self._since = stop - 1 - last
        self._values, self._good, self._times = buffer[:, stop:], ok[:, stop:], stamps[stop:]
        return out, stamps[:stop]
