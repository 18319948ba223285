"""Window features for condition monitoring, computed for many windows at once.

Vibration channels (names starting with ``accel``) get time-domain statistics and a Hann-windowed
spectrum summarised as relative energy in octave bands below Nyquist, the dominant frequency and the
spectral centroid; any other channel (temperature, pressure, ...) gets its mean.

    names = feature_names(["accel_x", "temperature"])   # ["accel_x.rms", ..., "temperature.mean"]
    rows = extract(windows, ["accel_x", "temperature"], rate_hz=4000.0)   # (k, len(names))
"""

from collections.abc import Sequence

import numpy as np

__all__ = ["extract", "feature_names"]

_BANDS = 8
# Octave bands: rotation harmonics crowd the low end, bearing and gear resonances the high end.
_BAND_EDGES = np.concatenate([[0.0], 2.0 ** np.arange(-_BANDS + 1, 1)])  # fractions of Nyquist
_VIBRATION = (
    "rms",
    "peak",
    "crest",
    "kurtosis",
    "skewness",
    *(f"band{b}" for b in range(_BANDS)),
    "dominant_hz",
    "centroid_hz",
)
# Below this share of the signal's power, the variation is rounding noise on a constant.
_FLAT = 1e-10


def _is_vibration(sensor: str) -> bool:
    return sensor.startswith("accel")


def feature_names(sensors: Sequence[str]) -> list[str]:
    """The columns `extract` returns for these sensors, in order."""
    return [
        f"{sensor}.{name}"
        for sensor in sensors
        for name in (_VIBRATION if _is_vibration(sensor) else ("mean",))
    ]


def extract(windows: np.ndarray, sensors: Sequence[str], rate_hz: float) -> np.ndarray:
    """Features of each window, float32 `(k, len(feature_names(sensors)))`, always finite."""
    if windows.ndim != 3 or windows.shape[1] != len(sensors):
        raise ValueError(
            f"windows: shape {windows.shape}, expected (k, {len(sensors)}, size), "
            "one row per sensor"
        )
    x = windows.astype(np.float64)
    columns: list[np.ndarray] = []
    for channel, sensor in enumerate(sensors):
        if _is_vibration(sensor):
            columns.append(_vibration(x[:, channel], rate_hz))
        else:
            columns.append(x[:, channel].mean(axis=1, keepdims=True))
    return np.hstack(columns).astype(np.float32)


def _vibration(x: np.ndarray, rate_hz: float) -> np.ndarray:
    """The `_VIBRATION` columns for windows `x` of shape `(k, size)`."""
    mean = x.mean(axis=1, keepdims=True)
    centred = x - mean
    power = np.mean(centred**2, axis=1)
    varying = power > _FLAT * (mean[:, 0] ** 2 + power)
    safe_power = np.where(varying, power, 1.0)
    rms = np.sqrt(power)
    peak = np.abs(centred).max(axis=1)
    crest = np.where(varying, peak / np.sqrt(safe_power), 0.0)
    kurtosis = np.where(varying, np.mean(centred**4, axis=1) / safe_power**2, 0.0)
    skewness = np.where(varying, np.mean(centred**3, axis=1) / safe_power**1.5, 0.0)

    size = x.shape[1]
    spectrum = np.abs(np.fft.rfft(centred * np.hanning(size), axis=1)) ** 2
    spectrum[:, 0] = 0.0  # what is left of the mean after the taper is not vibration
    freqs = np.fft.rfftfreq(size, d=1.0 / rate_hz)
    nyquist = rate_hz / 2
    band = np.clip(np.searchsorted(_BAND_EDGES * nyquist, freqs, side="right") - 1, 0, _BANDS - 1)
    band_energy = spectrum @ (band[:, None] == np.arange(_BANDS)).astype(np.float64)
    total = spectrum.sum(axis=1)
    has_energy = varying & (total > 0)
    safe_total = np.where(has_energy, total, 1.0)
    relative = np.where(has_energy[:, None], band_energy / safe_total[:, None], 0.0)
    dominant = np.where(has_energy, freqs[np.argmax(spectrum, axis=1)], 0.0)
    centroid = np.where(has_energy, spectrum @ freqs / safe_total, 0.0)
    return np.column_stack([rms, peak, crest, kurtosis, skewness, relative, dominant, centroid])
