"""A simulated weather station: air pressure (hPa), temperature (degC), relative humidity (%RH).

Each seed is one climate: mean temperature, daily swing, dew point and mean pressure. Temperature
follows the sun (coolest near 06:00, warmest near 15:00 local solar time, read from the sample
times); the dew point hardly moves over a day, so relative humidity is highest at dawn. Pressure
carries the twice-daily atmospheric tide and slow swings of a few days. A weather front
(`inject("front")`) passes over about twelve hours: pressure falls by up to 8 hPa times the
severity, humidity rises and it turns cooler, then all recover.

`time_scale` runs the weather's clock faster than the samples' own (3600 shows a day in 24 s of
samples at 1 Hz); the chunks keep the samples' own times.

    station = WeatherSimulator(seed=1, start=0.0, time_scale=3600.0)
    station.inject("front")
    chunk = station.read(24)   # a day: pressure, temperature, humidity
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
    day_hours,
)
from edgestack.sensing.source import SOURCES

__all__ = ["WeatherSimulator"]

_FRONT_HOURS = 12.0
_FRONT_PEAK_HOURS = 6.0
_WARMEST_HOUR = 15.0
_DAY_S = 86400.0


@SOURCES.register("weather")
class WeatherSimulator(Simulator):
    """A weather station with daily cycles and passing fronts; implements `Source`."""

    events = ("front",)

    def __init__(
        self,
        seed: int = 0,
        rate_hz: Annotated[float, Field(gt=0, le=100)] = 1.0,
        start: float | None = None,
        time_scale: Annotated[float, Field(gt=0, le=1e6)] = 1.0,
        defects: Defects = NOMINAL,
    ) -> None:
        super().__init__(
            seed,
            rate_hz,
            start,
            defects,
            [
                Channel("pressure", "hPa", 0.05, 50.0, 300.0, 1100.0),
                Channel("temperature", "degC", 0.1, 40.0, -40.0, 85.0),
                Channel("humidity", "%RH", 1.0, 100.0, 0.0, 100.0),
            ],
        )
        (climate,) = self._streams(1)
        self._time_scale = time_scale
        self._mean_c = climate.uniform(8.0, 22.0)
        self._swing_c = climate.uniform(3.0, 7.0)
        self._dew_c = self._mean_c - climate.uniform(3.0, 8.0)
        self._mean_hpa = climate.uniform(1008.0, 1022.0)
        self._synoptic_days = climate.uniform(2.5, 7.0, 2)
        self._synoptic_phase = climate.uniform(0.0, 2 * np.pi, 2)
        self._fronts = Occurrences(self.rate_hz)

    def _event(self, kind: str, severity: float) -> None:
        self._fronts.add(self._index, severity, _FRONT_HOURS * 3600.0 / self._time_scale)

    def _signal(self, index: np.ndarray) -> np.ndarray:
        seconds = self._seconds(index, self._time_scale)
        hour = day_hours(seconds)
        days = seconds / _DAY_S
        synoptic = np.sin(
            2 * np.pi * days[None, :] / self._synoptic_days[:, None] + self._synoptic_phase[:, None]
        )
        pressure = self._mean_hpa + 4.0 * synoptic[0] + 1.5 * synoptic[1]
        pressure += 1.0 * np.cos(4 * np.pi * (hour - 10.0) / 24.0)  # the atmospheric tide
        temperature = self._mean_c + self._swing_c * np.cos(2 * np.pi * (hour - _WARMEST_HOUR) / 24)
        temperature -= 1.5 * synoptic[0]  # low pressure tends to come with cooler air here
        dew = np.full(index.size, self._dew_c)
        for tau, severity in self._fronts.at(index):
            hours = tau * self._time_scale / 3600.0
            passing = (hours >= 0) * np.exp(-(((hours - _FRONT_PEAK_HOURS) / 2.5) ** 2))
            pressure -= 8.0 * severity * passing
            dew += 5.0 * severity * passing
            temperature -= 3.0 * severity * (hours >= 0) * np.exp(-(((hours - 7.0) / 3.0) ** 2))
        dew = np.minimum(dew, temperature)
        humidity = 100.0 * _vapour_pressure(dew) / _vapour_pressure(temperature)
        return np.vstack([pressure, temperature, humidity])


def _vapour_pressure(celsius: np.ndarray) -> np.ndarray:
    """Saturation vapour pressure up to a constant factor (Magnus formula)."""
    return np.exp(17.62 * celsius / (243.12 + celsius))
