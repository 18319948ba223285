"""A simulated ambient light sensor outdoors: illuminance in lux.

Daylight rises from dawn (06:00 local solar time, read from the sample times) to about 100 klx at
noon under a clear sky and fades through twilight to a night floor of a fraction of a lux.
Clouds drift across (each seed its own cloudiness) and cut the light by up to three quarters; a
`shadow` (`inject("shadow")`, someone or something over the sensor) darkens it by 90 % times the
severity for three seconds.

`time_scale` runs the sun's clock faster than the samples' own, as for `WeatherSimulator`.

    meter = LightSimulator(seed=1, start=12 * 3600.0)
    chunk = meter.read(10)   # illuminance
"""

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
    day_hours,
    trapezoid,
)
from edgestack.sensing.source import SOURCES

__all__ = ["LightSimulator"]

_NOON_LUX = 100_000.0
_TWILIGHT_LUX = 300.0
_NIGHT_LUX = 0.3
_CLOUD_S = 300.0  # how long a cloud takes to pass, on the sun's clock
_SHADOW_S = 3.0
_SHADOW_EDGE_S = 0.2


@SOURCES.register("light")
class LightSimulator(Simulator):
    """An outdoor light sensor under sun, clouds and passing shadows; implements `Source`."""

    events = ("shadow",)

    def __init__(
        self,
        seed: int = 0,
        rate_hz: Annotated[float, Field(gt=0, le=1000)] = 10.0,
        start: float | None = None,
        time_scale: Annotated[float, Field(gt=0, le=1e6)] = 1.0,
        defects: Defects = NOMINAL,
    ) -> None:
        channel = Channel("illuminance", "lux", 0.05, 1000.0, 0.0, 120_000.0, relative_noise=0.01)
        super().__init__(seed, rate_hz, start, defects, [channel])
        sky, clouds = self._streams(2)
        self._time_scale = time_scale
        self._cloudiness = sky.uniform(-1.0, 1.0)  # above 0: overcast more often than not
        self._clouds = Wander(clouds, [_CLOUD_S], time_scale / self.rate_hz)
        self._shadows = Occurrences(self.rate_hz)

    def _event(self, kind: str, severity: float) -> None:
        self._shadows.add(self._index, severity, _SHADOW_S + 2 * _SHADOW_EDGE_S)

    def _signal(self, index: np.ndarray) -> np.ndarray:
        hour = day_hours(self._seconds(index, self._time_scale))
        sun = np.sin(np.pi * (hour - 6.0) / 12.0)  # elevation-like: 1 at noon, below 0 at night
        twilight = np.clip(1 + sun / 0.1, 0.0, 1.0) ** 3
        clear = _NOON_LUX * np.maximum(sun, 0.0) ** 1.3 + _TWILIGHT_LUX * twilight + _NIGHT_LUX
        cover = 1 / (1 + np.exp(-(self._clouds(index.size)[0] + self._cloudiness) / 0.15))
        lux = clear * (1 - 0.75 * cover)
        for tau, severity in self._shadows.at(index):
            lux *= 1 - 0.9 * min(severity, 1.0) * trapezoid(
                tau, _SHADOW_EDGE_S, _SHADOW_S, _SHADOW_EDGE_S
            )
        return lux[None, :]
