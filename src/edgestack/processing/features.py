"""Window statistics and spectra: the extractors for vibration, temperature and other scalars.

Each takes windows `(k, channels, size)` and gives one group of columns per channel, named
`channel.feature`. All are finite: a flat window (a constant, up to rounding) has no shape and no
spectrum, so its shape statistics and spectral features are 0, and a NaN in a window makes the
columns it spoils 0 (a `clean` step before the windows counts and repairs such samples).

    extractor = EXTRACTORS.build("band_energies", {"bands": 8, "scale": "octave"})
    extractor.names(["accel_x"])                 # ["accel_x.band0", ..., "accel_x.band7"]
    rows = extractor(windows, rate_hz=8000.0)    # (k, 8)
"""

import math
from collections.abc import Sequence
from functools import cache, cached_property
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from edgestack.processing.step import EXTRACTORS

__all__ = [
    "BandEnergies",
    "DominantFrequency",
    "Mean",
    "Raw",
    "SpectralCentroid",
    "TimeStats",
    "finite_columns",
    "float_windows",
    "hann_power",
    "scalar_windows",
]

Stat = Literal["mean", "min", "max", "rms", "peak", "crest", "kurtosis", "skewness"]
# Below this share of the signal's power, the variation is rounding noise on a constant.
_FLAT = 1e-10


def scalar_windows(windows: np.ndarray, kind: str) -> np.ndarray:
    """`windows` as float64 `(k, channels, size)`; a clear error for frames or a wrong shape."""
    if windows.ndim != 3:
        raise ValueError(
            f"{kind}: windows of shape {windows.shape}, expected (k, channels, size) of scalar "
            "samples; use the image extractor for frames"
        )
    return float_windows(windows)


def float_windows(windows: np.ndarray) -> np.ndarray:
    """`windows` as float64, NaN in place of infinity: NaN spreads through sums and products
    without warnings, infinity raises them (inf - inf) and both end as 0 in `finite_columns`."""
    x = windows.astype(np.float64)
    infinite = np.isinf(x)
    if infinite.any():
        x[infinite] = np.nan
    return x


def finite_columns(columns: np.ndarray) -> np.ndarray:
    """`(k, channels, per_channel)` as float32 rows `(k, channels * per_channel)`, NaN as 0."""
    rows = columns.reshape(columns.shape[0], math.prod(columns.shape[1:])).astype(np.float32)
    if not np.isfinite(rows).all():
        rows[~np.isfinite(rows)] = 0.0
    return rows


def hann_power(x: np.ndarray) -> np.ndarray:
    """Power spectrum of each Hann-tapered row of `x` along its last axis."""
    spectrum = np.fft.rfft(x * _hann(x.shape[-1]), axis=-1)
    power: np.ndarray = spectrum.real**2 + spectrum.imag**2
    return power


@cache
def _hann(size: int) -> np.ndarray:
    taper = np.hanning(size)
    taper.flags.writeable = False  # shared by every caller
    return taper


@cache
def _freqs(size: int, rate_hz: float) -> np.ndarray:
    freqs = np.fft.rfftfreq(size, d=1.0 / rate_hz)
    freqs.flags.writeable = False
    return freqs


# The analysis of the windows last seen, if they were read-only. FeaturePipeline hands each
# extractor of a group of channels the same read-only windows, so what the time and spectral
# extractors share (mean, spread, spectrum) is computed once per chunk rather than once per
# extractor; on a stream of small chunks that overhead is most of the cost. Read-only arrays are
# taken not to change, and the reference held keeps their id from being reused.
_last: list[tuple[np.ndarray, "_Windows"]] = []


def _analysed(windows: np.ndarray, kind: str) -> "_Windows":
    if _last and _last[0][0] is windows and not windows.flags.writeable:
        return _last[0][1]
    analysis = _Windows(scalar_windows(windows, kind))
    if not windows.flags.writeable:
        _last[:] = [(windows, analysis)]
    return analysis


class _Windows:
    """What the statistics of windows `(k, channels, size)` share, each computed when first
    asked for."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = x

    @cached_property
    def mean(self) -> np.ndarray:
        return self.x.mean(axis=-1)

    @cached_property
    def centred(self) -> np.ndarray:
        return self.x - self.mean[..., None]

    @cached_property
    def squared(self) -> np.ndarray:
        return self.centred * self.centred

    @cached_property
    def power(self) -> np.ndarray:
        return self.squared.mean(axis=-1)

    @cached_property
    def varying(self) -> np.ndarray:
        return self.power > _FLAT * (self.mean**2 + self.power)

    @cached_property
    def safe_power(self) -> np.ndarray:
        return np.where(self.varying, self.power, 1.0)

    @cached_property
    def peak(self) -> np.ndarray:
        return np.abs(self.centred).max(axis=-1, initial=0.0)

    def stat(self, name: Stat) -> np.ndarray:
        if name == "mean":
            return self.mean
        if name == "min":
            return self.x.min(axis=-1, initial=np.inf)
        if name == "max":
            return self.x.max(axis=-1, initial=-np.inf)
        if name == "rms":
            return np.sqrt(self.power)
        if name == "peak":
            return self.peak
        if name == "crest":
            return np.where(self.varying, self.peak / np.sqrt(self.safe_power), 0.0)
        if name == "kurtosis":
            normalised = (self.squared * self.squared).mean(axis=-1) / self.safe_power**2
        else:
            cubed = (self.squared * self.centred).mean(axis=-1)
            normalised = cubed / (self.safe_power * np.sqrt(self.safe_power))
        return np.where(self.varying, normalised, 0.0)

    @cached_property
    def tapered_power(self) -> np.ndarray:
        power = hann_power(self.centred)
        power[..., 0] = 0.0  # what is left of the mean after the taper is not vibration
        return power

    @cached_property
    def has_energy(self) -> np.ndarray:
        return self.varying & (self.tapered_power.sum(axis=-1) > 0)

    @cached_property
    def spectrum(self) -> np.ndarray:
        """Hann-windowed power of the variation; all 0 for a window without any."""
        return np.where(self.has_energy[..., None], self.tapered_power, 0.0)

    @cached_property
    def total(self) -> np.ndarray:
        """Each window's spectral energy, 1 where it has none, so shares of it stay finite."""
        return np.where(self.has_energy, self.spectrum.sum(axis=-1), 1.0)

    def freqs(self, rate_hz: float) -> np.ndarray:
        return _freqs(self.x.shape[-1], rate_hz)


@EXTRACTORS.register("time_stats")
class TimeStats:
    """Statistics of each window, `channel.<stat>` in the order of `stats`.

    `rms`, `peak` (largest absolute deviation), `crest` (peak over rms), `kurtosis` and
    `skewness` are taken about the window's mean, the vibration convention: gravity and sensor
    offsets drop out, and `rms` is the standard deviation. `mean`, `min` and `max` are of the raw
    samples.
    """

    def __init__(
        self,
        stats: Annotated[tuple[Stat, ...], Field(min_length=1)] = (
            "rms",
            "peak",
            "crest",
            "kurtosis",
            "skewness",
        ),
    ) -> None:
        self.stats = list(stats)

    def names(self, channels: Sequence[str]) -> list[str]:
        return [f"{channel}.{stat}" for channel in channels for stat in self.stats]

    def __call__(self, windows: np.ndarray, rate_hz: float) -> np.ndarray:
        w = _analysed(windows, "time_stats")
        return finite_columns(np.stack([w.stat(stat) for stat in self.stats], axis=-1))


@EXTRACTORS.register("mean")
class Mean(TimeStats):
    """The mean of each window, `channel.mean`: for slow signals such as temperature."""

    def __init__(self) -> None:
        super().__init__(stats=("mean",))


@EXTRACTORS.register("band_energies")
class BandEnergies:
    """Share of each window's spectral energy in `bands` bands below Nyquist, `channel.band<i>`.

    `octave` bands halve in width towards 0 Hz (the lowest starts at 0): rotation harmonics
    crowd the low end, bearing and gear resonances the high end. `linear` bands are equal.
    """

    def __init__(
        self,
        bands: Annotated[int, Field(ge=1, le=32)] = 8,
        scale: Literal["octave", "linear"] = "octave",
    ) -> None:
        self.bands = bands
        self.scale = scale
        if scale == "octave":
            self._edges = np.concatenate([[0.0], 2.0 ** np.arange(-bands + 1, 1)])
        else:
            self._edges = np.linspace(0.0, 1.0, bands + 1)
        self._members: dict[tuple[int, float], np.ndarray] = {}

    def names(self, channels: Sequence[str]) -> list[str]:
        return [f"{channel}.band{b}" for channel in channels for b in range(self.bands)]

    def band_of_bins(self, size: int, rate_hz: float) -> np.ndarray:
        """The band of each bin of the spectrum of a window of `size` samples at `rate_hz`."""
        band = np.searchsorted(self._edges * rate_hz / 2, _freqs(size, rate_hz), side="right") - 1
        return np.clip(band, 0, self.bands - 1)  # Nyquist itself belongs to the top band

    def __call__(self, windows: np.ndarray, rate_hz: float) -> np.ndarray:
        w = _analysed(windows, "band_energies")
        key = (w.x.shape[-1], rate_hz)
        if key not in self._members:
            band = self.band_of_bins(*key)
            self._members[key] = (band[:, None] == np.arange(self.bands)).astype(np.float64)
        energy = w.spectrum @ self._members[key]
        return finite_columns(energy / w.total[..., None])


@EXTRACTORS.register("dominant_frequency")
class DominantFrequency:
    """The frequency of each window's strongest spectral line, `channel.dominant_hz`."""

    def names(self, channels: Sequence[str]) -> list[str]:
        return [f"{channel}.dominant_hz" for channel in channels]

    def __call__(self, windows: np.ndarray, rate_hz: float) -> np.ndarray:
        w = _analysed(windows, "dominant_frequency")
        # A window without energy has an all-zero spectrum, whose strongest line is at 0 Hz.
        strongest = w.freqs(rate_hz)[np.argmax(w.spectrum, axis=-1)]
        return finite_columns(strongest[..., None])


@EXTRACTORS.register("spectral_centroid")
class SpectralCentroid:
    """The energy-weighted mean frequency of each window, `channel.centroid_hz`."""

    def names(self, channels: Sequence[str]) -> list[str]:
        return [f"{channel}.centroid_hz" for channel in channels]

    def __call__(self, windows: np.ndarray, rate_hz: float) -> np.ndarray:
        w = _analysed(windows, "spectral_centroid")
        centroid = w.spectrum @ w.freqs(rate_hz) / w.total
        return finite_columns(centroid[..., None])


@EXTRACTORS.register("raw")
class Raw:
    """Every sample of each window as a column, `channel.s0 .. channel.s<size-1>`, channel by
    channel: the input of a network that learns its own features (a 1D-CNN folds the columns
    back into `(channels, size)` inside its graph). `size` must be the spec's window.
    """

    def __init__(self, size: Annotated[int, Field(ge=1, le=65536)]) -> None:
        self.size = size

    def names(self, channels: Sequence[str]) -> list[str]:
        return [f"{channel}.s{i}" for channel in channels for i in range(self.size)]

    def __call__(self, windows: np.ndarray, rate_hz: float) -> np.ndarray:
        x = scalar_windows(windows, "raw")
        if x.shape[2] != self.size:
            raise ValueError(
                f"raw: windows of {x.shape[2]} samples, size is {self.size}; "
                "set size to the spec's window"
            )
        return finite_columns(x)
