"""A simulated inertial unit worn at the waist: 3-axis accelerometer (g) and gyroscope (deg/s).

z points up while the wearer stands, so the accelerometer reads (0, 0, 1) g at rest. The wearer
does one activity at a time, switched with `inject`:

- idle: standing, a slight sway;
- walk: steps at 1.6-2.0 Hz (per seed), vertical bounce of about 0.3 g, sway at half the cadence;
- run: steps at 2.4-3.0 Hz, a landing impact of about 2 g each step;
- fall: 0.4 s of free fall (|a| near 0 g) tumbling sideways, an impact of 3-6 g growing with the
  severity, then lying still on one side (gravity along x or y) until the next activity.

    imu = ImuSimulator(seed=1, activity="walk")
    imu.inject("fall")
    chunk = imu.read(200)   # accel_x, accel_y, accel_z in g; gyro_x, gyro_y, gyro_z in deg/s
"""

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from edgestack.sensing.simulated._base import NOMINAL, Channel, Defects, Simulator
from edgestack.sensing.source import SOURCES

__all__ = ["ImuSimulator"]

Activity = Literal["idle", "walk", "run"]

_FREE_FALL_S = 0.4
_IMPACT_DECAY_S = 0.03
_TUMBLE_DEG_S = 220.0  # peak rotation rate while falling over


@SOURCES.register("imu")
class ImuSimulator(Simulator):
    """A person's waist-worn inertial unit; implements `Source`."""

    events = ("idle", "walk", "run", "fall")

    def __init__(
        self,
        seed: int = 0,
        rate_hz: Annotated[float, Field(ge=20, le=1000)] = 100.0,
        start: float | None = None,
        activity: Activity = "idle",
        defects: Defects = NOMINAL,
    ) -> None:
        accel = [Channel(f"accel_{a}", "g", 0.01, 4.0, -16.0, 16.0) for a in "xyz"]
        gyro = [Channel(f"gyro_{a}", "deg/s", 0.5, 200.0, -2000.0, 2000.0) for a in "xyz"]
        super().__init__(seed, rate_hz, start, defects, [*accel, *gyro])
        (body_rng,) = self._streams(1)
        self._cadence_hz = {
            "idle": body_rng.uniform(0.2, 0.35),  # sway
            "walk": body_rng.uniform(1.6, 2.0),
            "run": body_rng.uniform(2.4, 3.0),
        }
        self._vigour = body_rng.uniform(0.8, 1.2)
        self._side_rng = body_rng
        self._activity: str = activity
        self._since = 0  # sample at which the current activity began
        self._phase0 = 0.0  # step phase, in turns, at `_since`
        self._severity = 1.0
        self._lying = np.zeros(3)  # where gravity points after a fall

    @property
    def activity(self) -> str:
        """What the wearer does now: idle, walk, run or fall (and then lies still)."""
        return self._activity

    def _event(self, kind: str, severity: float) -> None:
        if self._activity in self._cadence_hz:
            elapsed = (self._index - self._since) / self.rate_hz
            self._phase0 = (self._phase0 + self._cadence_hz[self._activity] * elapsed) % 1.0
        self._activity, self._since, self._severity = kind, self._index, severity
        if kind == "fall":
            side = self._side_rng.integers(4)
            self._lying = np.roll([1.0 if side < 2 else -1.0, 0.0, 0.0], side % 2)

    def _signal(self, index: np.ndarray) -> np.ndarray:
        tau = (index - self._since) / self.rate_hz
        if self._activity == "fall":
            return self._fall(tau)
        theta = 2 * np.pi * (self._phase0 + self._cadence_hz[self._activity] * tau)
        v = self._vigour
        if self._activity == "idle":
            sway = 0.01 * v * np.sin(theta)
            accel = [sway, 0.7 * sway, 1.0 + 0.002 * np.sin(2 * theta)]
            gyro = [0.8 * v * np.sin(theta), 0.6 * v * np.cos(theta), np.zeros_like(theta)]
        elif self._activity == "walk":
            # Vertical bounce once per step; the body sways sideways once per stride (two steps).
            accel = [
                0.15 * v * np.sin(theta + 0.6),
                0.10 * v * np.sin(theta / 2),
                1.0 + 0.3 * v * (np.sin(theta) + 0.3 * np.sin(2 * theta + 0.8)),
            ]
            gyro = [
                12 * v * np.sin(theta / 2 + 0.3),
                20 * v * np.sin(theta + 1.0),
                15 * v * np.sin(theta / 2),
            ]
        else:
            # Landing is short and hard: a squared half-wave, mean removed so the body stays put.
            landing = np.maximum(np.sin(theta), 0.0) ** 2 - 0.25
            accel = [
                0.4 * v * np.sin(theta + 0.6),
                0.25 * v * np.sin(theta / 2),
                1.0 + 2.6 * v * landing,
            ]
            gyro = [
                40 * v * np.sin(theta / 2 + 0.3),
                70 * v * np.sin(theta + 1.0),
                45 * v * np.sin(theta / 2),
            ]
        return np.vstack([*accel, *gyro])

    def _fall(self, tau: np.ndarray) -> np.ndarray:
        """Free fall, impact, lying still: `(6, n)` at `tau` seconds since the fall began."""
        upright = np.array([0.0, 0.0, 1.0])
        # Support gives way within 0.1 s; the body then falls freely while it tips over.
        support = np.clip(1 - tau / 0.1, 0.0, 1.0)
        after = np.maximum(tau - _FREE_FALL_S, 0.0)
        landed = tau >= _FREE_FALL_S
        impact = (2.0 + 2.0 * self._severity) * np.exp(-after / _IMPACT_DECAY_S) * landed
        gravity = np.where(landed, 1.0, support)
        direction = np.where(landed[None, :], self._lying[:, None], upright[:, None])
        accel = direction * (gravity + impact)[None, :]
        tumble = _TUMBLE_DEG_S * np.sin(np.pi * np.clip(tau / _FREE_FALL_S, 0.0, 1.0))
        axis = np.abs(np.roll(self._lying, 1))  # rotating about the axis across the fall
        gyro = axis[:, None] * tumble[None, :]
        return np.vstack([accel, gyro])
