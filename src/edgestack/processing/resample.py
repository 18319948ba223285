"""The `resample` step: regular samples to another rate, irregular ones onto a regular grid."""

from fractions import Fraction
from typing import Annotated

import numpy as np
from pydantic import Field

from edgestack.processing._series import Hold, count_bad, series, unseries
from edgestack.processing._track import Track
from edgestack.processing.step import STEPS
from edgestack.sensing import Chunk, Quality

__all__ = ["Resample"]

# Up and down factors above this make filters of thousands of taps: resample in two steps.
_MAX_FACTOR = 64


@STEPS.register("resample")
class Resample:
    """Samples at `rate_hz`, whatever the input's rate or timing.

    - Regular input (no `timestamps`): the output rate over the input rate must be a ratio of
      integers up to 64 (8000 -> 1000, 1000 -> 1500); a polyphase anti-alias FIR (Kaiser
      window, as `scipy.signal.resample_poly` designs it) interpolates, its delay compensated,
      so output sample `j` is at `t0 + j / rate_hz` for the first chunk's `t0`. The samples
      before the stream are taken as equal to its first one.
    - Irregular input (`timestamps` set): linear interpolation onto the grid `first + j / rate_hz`,
      `first` being the first timestamp; a grid point is given once a sample at or after it has
      arrived. Samples whose time does not move forward are dropped and counted as
      `time_backwards`.

    NaN and infinity are counted and replaced by the last good value.
    """

    def __init__(self, rate_hz: Annotated[float, Field(gt=0)]) -> None:
        self.rate_hz = rate_hz
        self.reset()

    def reset(self) -> None:
        self._hold = Hold()
        self._regular: _Polyphase | None = None
        self._irregular: _Grid | None = None

    def push(self, chunk: Chunk, quality: Quality) -> Chunk:
        if chunk.n == 0:
            # A live source with nothing new says nothing about its timing yet.
            return chunk.with_data(chunk.data, rate_hz=self.rate_hz, timestamps=None)
        values = series(chunk.data)
        if chunk.timestamps is not None:
            if self._irregular is None:
                self._irregular = _Grid(self.rate_hz, values.shape[0])
            times, values = self._irregular.forward(chunk.timestamps, values, quality)
            values = self._hold(values, count_bad(values, quality, chunk.channels))
            t0, out = self._irregular(times, values, chunk.t0)
        else:
            values = self._hold(values, count_bad(values, quality, chunk.channels))
            if chunk.rate_hz == self.rate_hz:
                return chunk.with_data(unseries(values, chunk))
            if self._regular is None:
                self._regular = _Polyphase(chunk.rate_hz, self.rate_hz, chunk.t0)
            t0, out = self._regular(values)
        return chunk.with_data(unseries(out, chunk), t0=t0, rate_hz=self.rate_hz, timestamps=None)


class _Polyphase:
    """Streaming `upfirdn`: output `j` is the anti-aliased, upsampled input at `j * down`."""

    def __init__(self, rate_in: float, rate_out: float, t0: float) -> None:
        ratio = Fraction(rate_out / rate_in).limit_denominator(_MAX_FACTOR)
        if (
            ratio.numerator > _MAX_FACTOR
            or abs(float(ratio) * rate_in - rate_out) > 1e-9 * rate_out
        ):
            raise ValueError(
                f"resample: rate_hz {rate_out} over the input's {rate_in} Hz is not a ratio of "
                f"integers up to {_MAX_FACTOR}; pick a rate such as {rate_in * float(ratio):g} Hz"
            )
        self.up, self.down = ratio.numerator, ratio.denominator
        self.rate_out = rate_out
        self.t0 = t0
        # scipy.signal loads here, not at import: it costs an agent about 70 MB and half a second
        # at start, and most apps never use it.
        from scipy.signal import firwin

        half = 10 * max(self.up, self.down)
        taps = firwin(2 * half + 1, 1.0 / max(self.up, self.down), window=("kaiser", 5.0))
        self.delay = half  # in upsampled samples: the centre tap
        self.width = -(-len(taps) // self.up)
        # phases[p, r] weighs input `c // up - r` for the output at upsampled position `c`,
        # `p = c % up`.
        padded = np.zeros(self.up * self.width)
        padded[: len(taps)] = taps * self.up
        self.phases = padded.reshape(self.width, self.up).T
        self._buffer: np.ndarray | None = None
        self._base = 0  # input index of the buffer's first column
        self._n_in = 0
        self._n_out = 0

    def __call__(self, values: np.ndarray) -> tuple[float, np.ndarray]:
        t0 = self.t0 + self._n_out / self.rate_out
        if self._buffer is None:
            if values.shape[1] == 0:
                return t0, values
            self._buffer = np.repeat(values[:, :1].astype(np.float64), self.width, axis=1)
            self._base = -self.width
        self._buffer = np.concatenate([self._buffer, values], axis=1)
        self._n_in += values.shape[1]
        last = (self.up * self._n_in - 1 - self.delay) // self.down
        centre = np.arange(self._n_out, last + 1) * self.down + self.delay
        newest = centre // self.up - self._base
        columns = newest[:, None] - np.arange(self.width)
        out = np.einsum("sjr,jr->sj", self._buffer[:, columns], self.phases[centre % self.up])
        self._n_out = max(self._n_out, last + 1)
        needed = (self._n_out * self.down + self.delay) // self.up - (self.width - 1) - self._base
        self._buffer = self._buffer[:, max(needed, 0) :]
        self._base += max(needed, 0)
        return t0, out


class _Grid:
    """Irregular samples to a regular grid anchored at the first timestamp."""

    def __init__(self, rate_hz: float, rows: int) -> None:
        self.rate_hz = rate_hz
        self._first: float | None = None
        self._track = Track(rows)
        self._next = 0  # grid index of the next output

    def forward(
        self, timestamps: np.ndarray, values: np.ndarray, quality: Quality
    ) -> tuple[np.ndarray, np.ndarray]:
        """The samples whose time moves forward, in seconds from the first; the rest counted."""
        if self._first is None and len(timestamps):
            self._first = float(timestamps[0])
        if self._first is None:
            return np.empty(0), values
        times = timestamps - self._first
        newest = np.maximum.accumulate(np.concatenate([[self._track.end], times]))[:-1]
        forward = times > newest
        if not forward.all():
            back = int(np.argmin(forward))
            quality.count(
                "time_backwards",
                int((~forward).sum()),
                example=f"{float(timestamps[back])!r} after {float(newest[back]) + self._first!r}",
            )
        return times[forward], values[:, forward]

    def __call__(
        self, times: np.ndarray, values: np.ndarray, t0: float
    ) -> tuple[float, np.ndarray]:
        """The grid points the samples so far reach, and the time of the first of them."""
        self._track.add(times, values)
        start = self._next
        if self._first is not None:
            t0 = self._first + start / self.rate_hz
        last = int(np.floor(self._track.end * self.rate_hz)) if len(self._track.times) else -1
        grid = np.arange(start, last + 1) / self.rate_hz
        out = self._track.at(grid) if len(grid) else np.empty((values.shape[0], 0))
        self._next = max(start, last + 1)
        self._track.forget_before(self._next / self.rate_hz)
        return t0, out
