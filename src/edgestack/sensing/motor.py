"""A simulated rotating machine: a triaxial accelerometer and a thermometer on its bearing housing.

Each seed is one machine with its own shaft speed, load, harmonic mix, structural resonance and
ambient temperature. The machine changes operating regime every few seconds (speed within +-25 %
of its base, load between 0.1 and 1, smooth ramps between them), so a classifier has to tell a
fault from a change of speed or load.

- healthy: 1x, 2x and 3x shaft harmonics (1x growing with speed squared, 2x and 3x with load),
  broadband noise, and a structural mode at 1.2-1.6 kHz that the noise barely excites;
- imbalance: a strong 1x force, seen by the radial axes x and y 90 degrees apart and hardly by
  the axial z, growing with speed squared;
- bearing_wear: impacts at the outer-race defect frequency (3.58 x shaft speed) ringing the
  structural mode in decaying bursts, and a housing a few degrees warmer;
- temperature follows load (and bearing friction) through a 30 s first-order lag;
- its surroundings can change: `disturb` adds broadband vibration, as a pump installed next to
  it would, which is no fault of the machine but moves every feature a model reads.

Every sample is a function of its index, of filter states carried from the previous read and of
random draws taken one sample (or one impact) at a time, so any chunking of a recording gives the
same bytes.

    motor = MotorSimulator(seed=1)
    motor.inject("bearing_wear", severity=0.5)
    chunk = motor.read(8000)   # one second: accel_x, accel_y, accel_z in g, temperature in degC
"""

import math
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from edgestack.sensing.chunk import Chunk
from edgestack.sensing.quality import Quality
from edgestack.sensing.source import SOURCES

__all__ = ["FAULTS", "MotorSimulator"]

FAULTS = ("normal", "imbalance", "bearing_wear")

# Outer-race defect frequency over shaft speed for a typical deep-groove ball bearing.
_BPFO_RATIO = 3.58
_IMBALANCE_G = 0.25  # extra 1x amplitude at base speed and severity 1
_IMPACT_G = 0.7  # peak ringing of one bearing impact at base speed and severity 1
_BEARING_HEAT_C = 4.0
_THERMAL_TAU_S = 30.0
_MIN_RATE_HZ = 1000.0


@dataclass(frozen=True)
class _Machine:
    base_hz: float
    base_load: float
    harmonic_g: np.ndarray  # (3,) 1x, 2x, 3x amplitudes
    # Per axis and harmonic: gain * cos(phase) and gain * sin(phase), (3 axes, 3 harmonics).
    gain_cos: np.ndarray
    gain_sin: np.ndarray
    noise_g: float
    ringing_noise_g: float
    resonance_hz: float
    damping: float
    ambient_c: float
    imbalance_phase: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> "_Machine":
        radial = rng.uniform(0.7, 1.3, size=(2, 3))
        axial = rng.uniform(0.3, 0.6, size=(1, 3))
        base_hz = rng.uniform(18.0, 45.0)
        base_load = rng.uniform(0.35, 0.75)
        harmonic_g = rng.uniform([0.02, 0.02, 0.01], [0.04, 0.05, 0.03])
        gain = np.vstack([radial, axial])
        phase = rng.uniform(0.0, 2 * np.pi, size=(3, 3))
        return cls(
            base_hz=base_hz,
            base_load=base_load,
            harmonic_g=harmonic_g,
            gain_cos=gain * np.cos(phase),
            gain_sin=gain * np.sin(phase),
            noise_g=rng.uniform(0.015, 0.03),
            ringing_noise_g=rng.uniform(0.004, 0.008),
            resonance_hz=rng.uniform(1200.0, 1600.0),
            damping=rng.uniform(0.03, 0.06),
            ambient_c=rng.uniform(20.0, 30.0),
            imbalance_phase=rng.uniform(0.0, 2 * np.pi),
        )


@dataclass(frozen=True)
class _Regime:
    """Samples `[start, end)`: speed and load ramp from their previous values to new targets."""

    start: int
    end: int
    speed_from: float
    speed_to: float
    load_from: float
    load_to: float
    ramp_s: float
    shaft_cycles: float  # shaft angle at `start`, in turns, modulo 1
    race_cycles: float  # outer-race defect passes at `start`, modulo 1

    def cycles(self, tau: np.ndarray) -> np.ndarray:
        """Shaft turns since `start` after `tau` seconds: the closed-form integral of the speed."""
        ramp = self.ramp_s
        ramped = np.where(
            tau < ramp,
            tau / 2 - ramp / (2 * np.pi) * np.sin(np.pi * tau / ramp),
            tau - ramp / 2,
        )
        return self.speed_from * tau + (self.speed_to - self.speed_from) * ramped


@SOURCES.register("motor")
class MotorSimulator:
    """A rotating machine that can be given a fault; implements `Source`."""

    channels: tuple[str, ...] = ("accel_x", "accel_y", "accel_z", "temperature")
    units: tuple[str, ...] = ("g", "g", "g", "degC")

    def __init__(self, seed: int = 0, rate_hz: float = 8000.0, start: float | None = None) -> None:
        if not rate_hz >= _MIN_RATE_HZ:
            raise ValueError(
                f"rate_hz: {rate_hz} is too slow to show the bearing resonance; "
                f"use at least {_MIN_RATE_HZ:.0f}"
            )
        self.rate_hz = float(rate_hz)
        self.quality = Quality()
        self._start = time.time() if start is None else float(start)
        machine_rng, regime_rng, noise_rng, impact_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
        )
        self._machine = _Machine.draw(machine_rng)
        self._regime_rng = regime_rng
        self._noise_rng = noise_rng
        self._impact_rng = impact_rng
        self._fault = "normal"
        self._severity = 0.0
        self._noise = 1.0
        self._index = 0

        m = self._machine
        speed = float(m.base_hz * regime_rng.uniform(0.75, 1.25))
        load = self._draw_load()
        self._shaft_hz = speed
        self._regimes: deque[_Regime] = deque(
            [self._next_regime(0, speed, load, shaft_cycles=0.0, race_cycles=0.0)]
        )

        # A structural mode: two-pole resonator whose impulse response peaks near 1. Sampled
        # slower than about 4 kHz, the mode moves below Nyquist rather than alias, so the bearing
        # fault stays visible.
        omega = 2 * np.pi * min(m.resonance_hz, 0.4 * self.rate_hz) / self.rate_hz
        radius = math.exp(-m.damping * omega)
        self._ring = (math.sin(omega), -2 * radius * math.cos(omega), radius**2)
        self._ring_state = np.zeros((3, 2))

        self._heat_pole = math.exp(-1.0 / (_THERMAL_TAU_S * self.rate_hz))
        # Start warm, as if the machine had been running at its first load for a while.
        self._heat_state = np.array([[float(self._temperature_target(load, 0.0)), 0.0]])

    @property
    def fault(self) -> str:
        return self._fault

    @property
    def shaft_hz(self) -> float:
        """Shaft speed at the last sample read, as a tachometer on the machine would report it."""
        return self._shaft_hz

    def inject(self, kind: str, severity: float = 1.0) -> None:
        """Give the machine a fault from `FAULTS` from the next read on; `"normal"` removes it."""
        if kind not in FAULTS:
            raise ValueError(f"fault kind {kind!r} is unknown; valid kinds: {', '.join(FAULTS)}")
        if not (math.isfinite(severity) and severity >= 0):
            raise ValueError(f"severity: {severity} must be a finite number >= 0 (0 = no fault)")
        self._fault = kind
        self._severity = 0.0 if kind == "normal" else float(severity)

    def disturb(self, noise: float) -> None:
        """From the next read on, surround the machine with broadband vibration: its housing
        then shakes `noise` times as much as the machine alone makes it (1 is the machine
        alone). A change of environment, not a fault: the machine's condition stays."""
        if not (math.isfinite(noise) and noise >= 0):
            raise ValueError(f"noise: {noise} must be a finite number >= 0 (1 = undisturbed)")
        self._noise = float(noise)

    def close(self) -> None:
        """Nothing to release."""

    def read(self, n: int) -> Chunk:
        if n < 0:
            raise ValueError(f"n: {n} samples requested; ask for 0 or more")
        t0 = self._start + self._index / self.rate_hz
        if n == 0:
            return Chunk.empty(t0, self.rate_hz, self.channels, self.units)
        self._extend_regimes(self._index + n)
        speed, load, angle, impacts = self._kinematics(self._index + np.arange(n))
        self._shaft_hz = float(speed[-1])
        noise = self._noise_rng.standard_normal((n, 7)).T  # sample-major keeps chunking invisible
        accel = self._vibration(speed, load, angle, impacts, noise[:6])
        temperature = self._temperature(load, noise[6])
        self._index += n
        data = np.vstack([accel, temperature]).astype(np.float32)
        return Chunk(t0, self.rate_hz, self.channels, self.units, data)

    def _kinematics(self, index: np.ndarray) -> tuple[np.ndarray, ...]:
        """Shaft speed (Hz), load, shaft angle (rad) and outer-race impacts at these samples."""
        regimes = list(self._regimes)
        which = np.searchsorted([r.start for r in regimes], index, side="right") - 1

        def per_sample(field: str) -> np.ndarray:
            return np.array([getattr(r, field) for r in regimes])[which]

        dt = 1.0 / self.rate_hz
        tau = (index - per_sample("start")) * dt
        progress = (1 - np.cos(np.pi * np.clip(tau / per_sample("ramp_s"), 0.0, 1.0))) / 2
        speed_from, load_from = per_sample("speed_from"), per_sample("load_from")
        speed = speed_from + (per_sample("speed_to") - speed_from) * progress
        load = load_from + (per_sample("load_to") - load_from) * progress
        cycles = np.empty(len(index))
        cycles_before = np.empty(len(index))
        for k, regime in enumerate(regimes):
            mine = which == k
            cycles[mine] = regime.cycles(tau[mine])
            cycles_before[mine] = regime.cycles(tau[mine] - dt)
        angle = 2 * np.pi * (per_sample("shaft_cycles") + cycles)
        race = per_sample("race_cycles")
        impacts = np.floor(race + _BPFO_RATIO * cycles) > np.floor(
            race + _BPFO_RATIO * cycles_before
        )
        return speed, load, angle, impacts

    def _vibration(
        self,
        speed: np.ndarray,
        load: np.ndarray,
        angle: np.ndarray,
        impacts: np.ndarray,
        noise: np.ndarray,
    ) -> np.ndarray:
        """Acceleration (g) of the three axes, `(3, n)`."""
        m = self._machine
        relative_speed = speed / m.base_hz
        # Two trig calls give all three harmonics by angle addition; this is the costly part.
        cos1, sin1 = np.cos(angle), np.sin(angle)
        cos2, sin2 = cos1**2 - sin1**2, 2 * sin1 * cos1
        cos3, sin3 = cos2 * cos1 - sin2 * sin1, sin2 * cos1 + cos2 * sin1
        # Residual imbalance grows with speed squared; misalignment and looseness with load.
        amplitude = m.harmonic_g[:, None] * np.vstack([relative_speed**2, 0.4 + load, 0.2 + load])
        accel = m.gain_cos @ (amplitude * np.vstack([cos1, cos2, cos3])) - m.gain_sin @ (
            amplitude * np.vstack([sin1, sin2, sin3])
        )
        accel += self._noise * m.noise_g * (0.7 + 0.6 * load) * noise[:3]
        excitation = m.ringing_noise_g * noise[3:]

        severity = self._severity
        if self._fault == "imbalance":
            force = severity * _IMBALANCE_G * relative_speed**2
            spin_cos = cos1 * math.cos(m.imbalance_phase) - sin1 * math.sin(m.imbalance_phase)
            spin_sin = sin1 * math.cos(m.imbalance_phase) + cos1 * math.sin(m.imbalance_phase)
            accel[0] += force * spin_cos
            accel[1] += force * spin_sin  # the radial axes see the same force 90 degrees apart
            accel[2] += 0.1 * force * spin_cos  # little of it reaches the axial direction
        elif self._fault == "bearing_wear":
            hits = np.flatnonzero(impacts)
            strength = np.clip(1 + 0.25 * self._impact_rng.standard_normal(hits.size), 0.3, None)
            pulse = np.zeros(len(speed))
            pulse[hits] = severity * _IMPACT_G * strength * relative_speed[hits]
            excitation += np.array([[1.0], [0.8], [0.4]]) * pulse
        return accel + _two_pole(excitation, *self._ring, self._ring_state)

    def _temperature(self, load: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Housing temperature (degC), `(1, n)`: a first-order lag behind load and friction."""
        bearing = self._severity if self._fault == "bearing_wear" else 0.0
        target = np.broadcast_to(self._temperature_target(load, bearing), load.shape)
        pole = self._heat_pole
        temperature = _two_pole(target[None, :], 1 - pole, -pole, 0.0, self._heat_state)
        return temperature + 0.03 * noise[None, :]

    def _temperature_target(self, load: np.ndarray | float, bearing: float) -> np.ndarray:
        return np.asarray(self._machine.ambient_c + 18.0 * load + _BEARING_HEAT_C * bearing)

    def _draw_load(self) -> float:
        offset = self._regime_rng.uniform(-0.35, 0.35)
        return float(np.clip(self._machine.base_load + offset, 0.1, 1.0))

    def _next_regime(
        self,
        start: int,
        speed_from: float,
        load_from: float,
        shaft_cycles: float,
        race_cycles: float,
    ) -> _Regime:
        rng = self._regime_rng
        duration = rng.uniform(2.0, 6.0)
        return _Regime(
            start=start,
            end=start + round(duration * self.rate_hz),
            speed_from=speed_from,
            speed_to=self._machine.base_hz * rng.uniform(0.75, 1.25),
            load_from=load_from,
            load_to=self._draw_load(),
            ramp_s=min(rng.uniform(0.3, 1.5), 0.8 * duration),
            shaft_cycles=shaft_cycles,
            race_cycles=race_cycles,
        )

    def _extend_regimes(self, end: int) -> None:
        """Cover samples before `end` and forget regimes that finished before this read."""
        # `<=` keeps one regime beyond `end`, so the deque is never left empty.
        while self._regimes[-1].end <= end:
            last = self._regimes[-1]
            turns = float(last.cycles(np.array((last.end - last.start) / self.rate_hz)))
            self._regimes.append(
                self._next_regime(
                    last.end,
                    last.speed_to,
                    last.load_to,
                    shaft_cycles=(last.shaft_cycles + turns) % 1.0,
                    race_cycles=(last.race_cycles + _BPFO_RATIO * turns) % 1.0,
                )
            )
        while self._regimes[0].end <= self._index:
            self._regimes.popleft()


def _two_pole(x: np.ndarray, b0: float, a1: float, a2: float, state: np.ndarray) -> np.ndarray:
    """`y[n] = b0 x[n] - a1 y[n-1] - a2 y[n-2]` along each row of `x`, `(rows, n)`, starting
    from the last two outputs of each row in `state`, `(rows, 2)`, which it moves on.

    A loop over samples rather than `scipy.signal.lfilter`: importing scipy.signal would cost
    an agent watching the motor about 70 MB and half a second at start, the loop about 70 ns
    a sample. One sample at a time, whatever the chunks, keeps any chunking's bytes the same."""
    out = np.empty(x.shape)
    for row, samples in enumerate(x.tolist()):
        y1, y2 = state[row].tolist()
        ys = []
        for v in samples:
            y = b0 * v - a1 * y1 - a2 * y2
            ys.append(y)
            y1, y2 = y, y1
        out[row] = ys
        state[row] = (y1, y2)
    return out
