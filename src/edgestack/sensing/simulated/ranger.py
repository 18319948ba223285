"""A simulated distance sensor (an ultrasonic or lidar ranger): distance in metres.

Objects come and go in front of the sensor, one after another: each approaches from beyond the
range, comes as close as it will and leaves again; between them the sensor sees the background
(a wall, or nothing within range). Nothing within range gives a max-range reading, as real
rangers report when no echo returns. `inject("obstacle")` puts something in front of the sensor
for five seconds, closer the higher the severity.

    ranger = RangerSimulator(seed=1, max_range_m=4.0)
    chunk = ranger.read(50)   # distance in m, within [min_range_m, max_range_m]
"""

from dataclasses import dataclass
from typing import Annotated

import numpy as np
from pydantic import Field

from edgestack.sensing.simulated._base import (
    NOMINAL,
    Channel,
    Defects,
    Episodes,
    Occurrences,
    Simulator,
    gather,
    trapezoid,
)
from edgestack.sensing.source import SOURCES

__all__ = ["RangerSimulator"]

_OBSTACLE_S = 5.0
_OBSTACLE_EDGE_S = 0.5


@dataclass(frozen=True)
class _Pass:
    """One object passing: its closest distance and how sharply it comes and goes."""

    closest_m: float
    shape: float


@SOURCES.register("ranger")
class RangerSimulator(Simulator):
    """A ranger watching objects come and go; implements `Source`."""

    events = ("obstacle",)

    def __init__(
        self,
        seed: int = 0,
        rate_hz: Annotated[float, Field(gt=0, le=1000)] = 10.0,
        start: float | None = None,
        min_range_m: Annotated[float, Field(ge=0)] = 0.02,
        max_range_m: Annotated[float, Field(gt=0, le=500)] = 4.0,
        defects: Defects = NOMINAL,
    ) -> None:
        if not max_range_m > min_range_m:
            raise ValueError(
                f"max_range_m: {max_range_m} must exceed min_range_m ({min_range_m}); "
                "raise max_range_m or lower min_range_m"
            )
        channel = Channel(
            "distance", "m", 0.003, max_range_m, min_range_m, max_range_m, relative_noise=0.01
        )
        super().__init__(seed, rate_hz, start, defects, [channel])
        scene, passes = self._streams(2)
        self._min, self._max = min_range_m, max_range_m
        self._far = 1.5 * max_range_m
        # A wall within range for some seeds, out of range (max-range readings) for others.
        self._background = scene.uniform(0.7, 1.6) * max_range_m
        near = min_range_m + 0.05 * (max_range_m - min_range_m)

        def draw(rng: np.random.Generator) -> tuple[float, _Pass]:
            # A quarter of the time nothing comes into range.
            closest = rng.uniform(near, 0.8 * max_range_m) if rng.random() < 0.75 else self._far
            return rng.uniform(4.0, 12.0), _Pass(closest, rng.uniform(1.0, 2.5))

        self._passes = Episodes(passes, self.rate_hz, draw)
        self._obstacles = Occurrences(self.rate_hz)

    def _event(self, kind: str, severity: float) -> None:
        self._obstacles.add(self._index, severity, _OBSTACLE_S + 2 * _OBSTACLE_EDGE_S)

    def _signal(self, index: np.ndarray) -> np.ndarray:
        params, which, tau, length = self._passes.at(index)
        closest = gather(params, "closest_m", which)
        # Far away at both ends of the pass, closest half-way through.
        away = np.abs(2 * tau / length - 1) ** gather(params, "shape", which)
        distance = np.minimum(closest + (self._far - closest) * away, self._background)
        for tau_obstacle, severity in self._obstacles.at(index):
            near = max(self._min, 0.25 * self._max / max(severity, 0.25))
            presence = trapezoid(tau_obstacle, _OBSTACLE_EDGE_S, _OBSTACLE_S, _OBSTACLE_EDGE_S)
            distance = np.minimum(distance, near + (self._far - near) * (1 - presence))
        return np.minimum(distance, self._max)[None, :]
