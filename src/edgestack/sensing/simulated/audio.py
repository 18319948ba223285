"""A simulated microphone: sound pressure in pascal (1 Pa is 94 dB SPL), 16 kHz mono by default.

Each seed is one place with its own ambient noise (45-60 dB, mostly low frequencies) and a faint
mains hum of machinery. Two events can be injected, each at a loudness growing with the severity:

- siren: six seconds of a wailing tone sweeping between about 550 and 1350 Hz every 2-4 s, with
  odd harmonics, fading in and out;
- glass: a pane breaking: a broadband crack decaying within tens of milliseconds, then shards
  ringing at 2-7.5 kHz for up to half a second.

    mic = AudioSimulator(seed=1)
    mic.inject("siren")
    chunk = mic.read(16000)   # one second of sound, in Pa
"""

from typing import Annotated

import numpy as np
from pydantic import Field

from edgestack.sensing.simulated._base import NOMINAL, Channel, Defects, Simulator
from edgestack.sensing.source import SOURCES

__all__ = ["AudioSimulator"]

_OVERLOAD_PA = 63.0  # 130 dB SPL, where the microphone clips
_SIREN_S, _SIREN_FADE_S = 6.0, 0.3
_SIREN_CENTRE_HZ, _SIREN_SWING_HZ = 950.0, 400.0
_SIREN_PA = 2.0  # 100 dB SPL at severity 1
_CRACK_PA, _CRACK_DECAY_S = 5.0, 0.008
_SHARDS = 12
_GLASS_S = 0.8


@SOURCES.register("audio")
class AudioSimulator(Simulator):
    """A microphone hearing ambient noise, sirens and breaking glass; implements `Source`."""

    events = ("siren", "glass")

    def __init__(
        self,
        seed: int = 0,
        rate_hz: Annotated[float, Field(ge=8000, le=96000)] = 16000.0,
        start: float | None = None,
        defects: Defects = NOMINAL,
    ) -> None:
        channel = Channel("sound", "Pa", 0.0003, 0.2, -_OVERLOAD_PA, _OVERLOAD_PA)
        super().__init__(seed, rate_hz, start, defects, [channel])
        place, self._ambient_rng, self._event_rng = self._streams(3)
        # Ambient noise: white noise through a one-pole low-pass near 50 Hz, so most of its power
        # sits low, as traffic and ventilation do.
        self._pole = float(np.exp(-2 * np.pi * 50.0 / self.rate_hz))
        self._ambient_pa = 0.02 * 10 ** (place.uniform(-0.8, -0.05))  # 45-60 dB SPL
        self._ambient_state = np.zeros(1)
        self._hum_pa = place.uniform(0.0005, 0.002)
        self._hum_hz = float(place.choice([50.0, 60.0]))
        self._sounds: list[tuple[int, np.ndarray]] = []

    def _event(self, kind: str, severity: float) -> None:
        sound = self._siren(severity) if kind == "siren" else self._glass(severity)
        self._sounds.append((self._index, sound))

    def _signal(self, index: np.ndarray) -> np.ndarray:
        from scipy.signal import lfilter  # loaded when first used, as in `_base`

        n = index.size
        # The gain keeps the filtered noise at unit variance before scaling to the place's level.
        gain = np.sqrt(1 - self._pole**2)
        shocks = self._ambient_rng.standard_normal(n)
        ambient, self._ambient_state = lfilter(
            [gain], [1.0, -self._pole], shocks, zi=self._ambient_state
        )
        hum = np.sin(2 * np.pi * self._hum_hz * index / self.rate_hz)
        sound = self._ambient_pa * ambient + self._hum_pa * hum
        first = int(index[0])
        self._sounds = [(b, w) for b, w in self._sounds if b + w.size > first]
        for begin, wave in self._sounds:
            lo, hi = max(first - begin, 0), min(first + n - begin, wave.size)
            if hi > lo:
                sound[begin + lo - first : begin + hi - first] += wave[lo:hi]
        return sound[None, :]

    def _siren(self, severity: float) -> np.ndarray:
        rng = self._event_rng
        period = rng.uniform(2.0, 4.0)
        tau = np.arange(round(_SIREN_S * self.rate_hz)) / self.rate_hz
        # Phase is the integral of the swept frequency, in closed form.
        turns = _SIREN_CENTRE_HZ * tau + _SIREN_SWING_HZ * period / (2 * np.pi) * (
            1 - np.cos(2 * np.pi * tau / period)
        )
        top_hz = _SIREN_CENTRE_HZ + _SIREN_SWING_HZ
        wave = sum(
            np.sin(2 * np.pi * k * turns) / k**2
            for k in (1, 3, 5)
            if k * top_hz < 0.45 * self.rate_hz  # no harmonic may fold back below Nyquist
        )
        fade = np.clip(np.minimum(tau, _SIREN_S - tau) / _SIREN_FADE_S, 0.0, 1.0)
        return _SIREN_PA * severity * fade * np.asarray(wave)

    def _glass(self, severity: float) -> np.ndarray:
        rng = self._event_rng
        tau = np.arange(round(_GLASS_S * self.rate_hz)) / self.rate_hz
        crack = _CRACK_PA * rng.standard_normal(tau.size) * np.exp(-tau / _CRACK_DECAY_S)
        top_hz = min(7500.0, 0.45 * self.rate_hz)
        onset = rng.uniform(0.0, 0.35, _SHARDS)
        freq = rng.uniform(2000.0, top_hz, _SHARDS)
        decay = rng.uniform(0.03, 0.15, _SHARDS)
        level = rng.uniform(0.1, 0.6, _SHARDS)
        after = tau[None, :] - onset[:, None]
        rings = (after >= 0) * level[:, None] * np.exp(-np.maximum(after, 0) / decay[:, None])
        shards = (rings * np.sin(2 * np.pi * freq[:, None] * np.maximum(after, 0))).sum(axis=0)
        return severity * (crack + shards)
