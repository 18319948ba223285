"""A simulated vehicle with a GPS receiver: position, altitude, speed and heading.

The vehicle drives a smooth route from its start point: its speed wanders around the cruise speed
(time constant 30 s), it turns at a yaw rate that wanders too (10 s) and shrinks as it slows, and
the road climbs and falls with the distance driven. Each fix's position is the previous one moved
by the fix's speed and heading over one sample interval, so speed agrees with the track.

    car = VehicleSimulator(seed=1, start=0.0)
    car.inject("stop", severity=0.5)   # brake to a halt, wait 10 s, drive on
    chunk = car.read(60)               # latitude, longitude, altitude, speed, heading
"""

import math
from typing import Annotated

import numpy as np
from pydantic import Field

from edgestack.sensing.simulated._base import (
    NOMINAL,
    Channel,
    Defects,
    Occurrences,
    Simulator,
    Wander,
    trapezoid,
)
from edgestack.sensing.source import SOURCES

__all__ = ["VehicleSimulator"]

_EARTH_RADIUS_M = 6_371_000.0
_METRES_PER_DEGREE = math.pi * _EARTH_RADIUS_M / 180.0
_GPS_NOISE_M = 2.5
_YAW_DEG_S = 6.0  # typical yaw rate at cruise speed
_BRAKE_S, _WAIT_S, _PULL_AWAY_S = 4.0, 20.0, 6.0


@SOURCES.register("vehicle")
class VehicleSimulator(Simulator):
    """A vehicle on a smooth route reporting GPS fixes; implements `Source`."""

    events = ("stop",)

    def __init__(
        self,
        seed: int = 0,
        rate_hz: Annotated[float, Field(gt=0, le=100)] = 1.0,
        start: float | None = None,
        latitude: Annotated[float, Field(ge=-80, le=80)] = 48.137,
        longitude: Annotated[float, Field(ge=-180, le=180)] = 11.575,
        cruise_mps: Annotated[float, Field(gt=0, le=60)] = 14.0,
        defects: Defects = NOMINAL,
    ) -> None:
        lon_degree_m = _METRES_PER_DEGREE * math.cos(math.radians(latitude))
        super().__init__(
            seed,
            rate_hz,
            start,
            defects,
            [
                Channel("latitude", "deg", _GPS_NOISE_M / _METRES_PER_DEGREE, 0.001, -90, 90),
                Channel(
                    "longitude", "deg", _GPS_NOISE_M / lon_degree_m, 0.001, -180, 180, wraps=True
                ),
                Channel("altitude", "m", 4.0, 100.0),
                Channel("speed", "m/s", 0.1, 30.0, low=0.0),
                Channel("heading", "deg", 1.0, 360.0, 0.0, 360.0, wraps=True),
            ],
        )
        terrain_rng, heading_rng, wander_rng = self._streams(3)
        self._cruise = cruise_mps
        self._wander = Wander(wander_rng, [30.0, 10.0], 1 / self.rate_hz)
        self._terrain_m = terrain_rng.uniform([12.0, 5.0, 1.0], [30.0, 10.0, 3.0])
        self._terrain_wavelength_m = terrain_rng.uniform(
            [2000.0, 500.0, 100.0], [4000.0, 900.0, 250.0]
        )
        self._terrain_phase = terrain_rng.uniform(0, 2 * np.pi, 3)
        self._base_altitude = terrain_rng.uniform(100.0, 600.0)
        # Latitude, longitude, heading and distance driven at the last sample; the channels wrap
        # longitude and heading into range.
        self._state = np.array([latitude, longitude, heading_rng.uniform(0.0, 360.0), 0.0])
        self._stops = Occurrences(self.rate_hz)

    def _event(self, kind: str, severity: float) -> None:
        self._stops.add(self._index, severity, _BRAKE_S + _WAIT_S * severity + _PULL_AWAY_S)

    def _signal(self, index: np.ndarray) -> np.ndarray:
        dt = 1 / self.rate_hz
        speed_wander, yaw_wander = self._wander(index.size)
        relative = np.clip(1 + 0.3 * speed_wander, 0.0, 1.6) * self._stop_factor(index)
        speed = self._cruise * relative
        yaw = _YAW_DEG_S * yaw_wander * np.minimum(relative, 1.0)
        heading = _integrate(self._state[2], yaw * dt)
        heading_rad = np.radians(heading)
        latitude = _integrate(self._state[0], speed * dt * np.cos(heading_rad) / _METRES_PER_DEGREE)
        east_degree_m = _METRES_PER_DEGREE * np.cos(np.radians(latitude))
        longitude = _integrate(self._state[1], speed * dt * np.sin(heading_rad) / east_degree_m)
        distance = _integrate(self._state[3], speed * dt)
        self._state = np.array([latitude[-1], longitude[-1], heading[-1], distance[-1]])
        waves = 2 * np.pi * distance[None, :] / self._terrain_wavelength_m[:, None]
        hills = self._terrain_m @ np.sin(waves + self._terrain_phase[:, None])
        altitude = self._base_altitude + hills
        return np.vstack([latitude, longitude, altitude, speed, heading])

    def _stop_factor(self, index: np.ndarray) -> np.ndarray:
        """1 while driving freely; down to 0 while stopped for an injected `stop`."""
        factor = np.ones(index.size)
        for tau, severity in self._stops.at(index):
            factor *= 1 - trapezoid(tau, _BRAKE_S, _WAIT_S * severity, _PULL_AWAY_S)
        return factor


def _integrate(state: float, steps: np.ndarray) -> np.ndarray:
    """`state` plus the running sum of `steps`; one addition at a time, so chunking cannot show."""
    return np.cumsum(np.concatenate([[state], steps]))[1:]
