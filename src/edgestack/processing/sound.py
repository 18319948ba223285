"""Sound extractors: log mel energies and MFCCs of each window, averaged over its frames.

The mel filterbank is written with numpy and the DCT taken with `scipy.fft`: librosa would bring
numba, whose JIT warm-up a Pi-class device pays at every start.
"""

from collections.abc import Sequence
from typing import Annotated

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import Field

from edgestack.processing.features import finite_columns, hann_power, scalar_windows
from edgestack.processing.step import EXTRACTORS

__all__ = ["LogMel", "Mfcc", "mel_filterbank"]

Count = Annotated[int, Field(ge=1, le=256)]
Samples = Annotated[int, Field(ge=2)]
# Energy added before the logarithm: silence reads as a floor, not as minus infinity.
_FLOOR = 1e-10


def _mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(n_mels: int, frame: int, rate_hz: float, fmin: float, fmax: float) -> np.ndarray:
    """Triangular filters evenly spaced on the (HTK) mel scale, `(n_mels, frame // 2 + 1)`,
    weighing the bins of a `frame`-sample `rfft`; each peaks at 1 at its centre."""
    freqs = np.fft.rfftfreq(frame, d=1.0 / rate_hz)
    edges = _hz(np.linspace(_mel(np.array(fmin)), _mel(np.array(fmax)), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lower) / (centre - lower)
    falling = (upper - freqs) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


@EXTRACTORS.register("log_mel")
class LogMel:
    """Log mel energies, `channel.mel<i>`: each window is cut into `frame`-sample frames every
    `hop` samples, each frame's Hann-windowed power spectrum is weighed by `n_mels` mel filters
    between `fmin` and `fmax` (Nyquist when left out), and the logarithms are averaged over the
    frames. Averaging keeps the column count independent of the window length; a model that
    needs the order of frames should take shorter windows instead.
    """

    prefix = "mel"

    def __init__(
        self,
        n_mels: Count = 40,
        fmin: Annotated[float, Field(ge=0)] = 0.0,
        fmax: Annotated[float, Field(gt=0)] | None = None,
        frame: Samples = 512,
        hop: Samples = 256,
    ) -> None:
        if fmax is not None and not fmin < fmax:
            raise ValueError(f"log_mel: fmin {fmin} is not below fmax {fmax}; swap them")
        self.n_mels = n_mels
        self.fmin = fmin
        self.fmax = fmax
        self.frame = frame
        self.hop = hop
        self._banks: dict[float, np.ndarray] = {}

    def names(self, channels: Sequence[str]) -> list[str]:
        return [f"{channel}.{self.prefix}{i}" for channel in channels for i in range(self.width)]

    @property
    def width(self) -> int:
        """Columns per channel."""
        return self.n_mels

    def __call__(self, windows: np.ndarray, rate_hz: float) -> np.ndarray:
        return finite_columns(self.log_mel(windows, rate_hz))

    def log_mel(self, windows: np.ndarray, rate_hz: float) -> np.ndarray:
        """Frame-averaged log mel energies, `(k, channels, n_mels)`."""
        x = scalar_windows(windows, "log_mel")
        if x.shape[-1] < self.frame:
            raise ValueError(
                f"log_mel: frame {self.frame} is longer than the {x.shape[-1]}-sample window; "
                "set frame to at most the window"
            )
        frames = sliding_window_view(x, self.frame, axis=-1)[..., :: self.hop, :]
        energy = hann_power(frames) @ self._bank(rate_hz).T
        return np.log(energy + _FLOOR).mean(axis=-2)

    def _bank(self, rate_hz: float) -> np.ndarray:
        if rate_hz not in self._banks:
            fmax = rate_hz / 2 if self.fmax is None else self.fmax
            if fmax > rate_hz / 2 or self.fmin >= fmax:
                raise ValueError(
                    f"log_mel: fmin {self.fmin} Hz and fmax {fmax} Hz must lie in order within "
                    f"0 to {rate_hz / 2} Hz, the Nyquist frequency of {rate_hz} Hz input"
                )
            self._banks[rate_hz] = mel_filterbank(self.n_mels, self.frame, rate_hz, self.fmin, fmax)
        return self._banks[rate_hz]


@EXTRACTORS.register("mfcc")
class Mfcc(LogMel):
    """The first `n_mfcc` mel-frequency cepstral coefficients, `channel.mfcc<i>`: the type-II
    orthonormal DCT of `log_mel`'s averaged energies (the DCT is linear, so averaging before or
    after it is the same)."""

    prefix = "mfcc"

    def __init__(
        self,
        n_mfcc: Count = 13,
        n_mels: Count = 40,
        fmin: Annotated[float, Field(ge=0)] = 0.0,
        fmax: Annotated[float, Field(gt=0)] | None = None,
        frame: Samples = 512,
        hop: Samples = 256,
    ) -> None:
        if n_mfcc > n_mels:
            raise ValueError(f"mfcc: n_mfcc {n_mfcc} is above n_mels {n_mels}; lower n_mfcc")
        super().__init__(n_mels, fmin, fmax, frame, hop)
        self.n_mfcc = n_mfcc

    @property
    def width(self) -> int:
        return self.n_mfcc

    def __call__(self, windows: np.ndarray, rate_hz: float) -> np.ndarray:
        # scipy loads here, not at import: about 30 MB that an agent without sound never needs.
        from scipy.fft import dct

        cepstrum = dct(self.log_mel(windows, rate_hz), type=2, norm="ortho", axis=-1)
        return finite_columns(cepstrum[..., : self.n_mfcc])
