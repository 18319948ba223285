"""Butterworth `lowpass`, `highpass` and `bandpass` steps, their state carried across chunks."""

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from edgestack.processing._series import Hold, count_bad, series, unseries
from edgestack.processing.step import STEPS
from edgestack.sensing import Chunk, Quality

__all__ = ["BandPass", "HighPass", "LowPass"]

Hz = Annotated[float, Field(gt=0)]
Order = Annotated[int, Field(ge=1, le=10)]


class _Butterworth:
    """A Butterworth filter run as second-order sections, one filter state per series.

    The state starts as if the first sample had always been there, so a sensor's offset does not
    ring through the output. NaN and infinity are counted and replaced by the last good value,
    since one would otherwise poison the filter state for good. The cutoffs are checked against
    the Nyquist frequency of the first chunk; a new rate designs the filter anew.
    """

    band: Literal["lowpass", "highpass", "bandpass"]

    def __init__(self, cutoffs: list[float], order: int) -> None:
        self.cutoffs = cutoffs
        self.order = order
        self._hold = Hold()
        self._rate: float | None = None
        self._sos = np.empty((0, 6))
        self._zi: np.ndarray | None = None

    def push(self, chunk: Chunk, quality: Quality) -> Chunk:
        values = series(chunk.data)
        values = self._hold(values, count_bad(values, quality, chunk.channels))
        if chunk.rate_hz != self._rate:
            self._design(chunk.rate_hz)
        if values.shape[1] == 0:
            return chunk
        from scipy.signal import sosfilt, sosfilt_zi  # loaded with the filter, see `_design`

        if self._zi is None or self._zi.shape[1] != values.shape[0]:
            self._zi = sosfilt_zi(self._sos)[:, None, :] * values[None, :, :1].astype(np.float64)
        out, self._zi = sosfilt(self._sos, values, axis=1, zi=self._zi)
        return chunk.with_data(unseries(out, chunk))

    def _design(self, rate_hz: float) -> None:
        # scipy.signal loads here, not at import: it costs an agent about 70 MB and half a second
        # at start, and most apps never use it.
        from scipy.signal import butter

        nyquist = rate_hz / 2
        if max(self.cutoffs) >= nyquist:
            raise ValueError(
                f"{self.band}: cutoff {max(self.cutoffs)} Hz is not below the Nyquist frequency "
                f"{nyquist} Hz of {rate_hz} Hz input; lower the cutoff or sample faster"
            )
        cutoff = self.cutoffs[0] if len(self.cutoffs) == 1 else self.cutoffs
        self._sos = butter(self.order, cutoff, btype=self.band, output="sos", fs=rate_hz)
        self._rate = rate_hz
        self._zi = None

    def reset(self) -> None:
        self._hold.reset()
        self._zi = None


@STEPS.register("lowpass")
class LowPass(_Butterworth):
    """Passes what is below `cutoff_hz`, falling off at 6 dB per octave per `order`."""

    band = "lowpass"

    def __init__(self, cutoff_hz: Hz, order: Order = 4) -> None:
        super().__init__([cutoff_hz], order)


@STEPS.register("highpass")
class HighPass(_Butterworth):
    """Passes what is above `cutoff_hz`: removes offsets, gravity and slow drift."""

    band = "highpass"

    def __init__(self, cutoff_hz: Hz, order: Order = 4) -> None:
        super().__init__([cutoff_hz], order)


@STEPS.register("bandpass")
class BandPass(_Butterworth):
    """Passes what lies between `low_hz` and `high_hz`."""

    band = "bandpass"

    def __init__(self, low_hz: Hz, high_hz: Hz, order: Order = 4) -> None:
        if not low_hz < high_hz:
            raise ValueError(f"bandpass: low_hz {low_hz} is not below high_hz {high_hz}; swap them")
        super().__init__([low_hz, high_hz], order)
