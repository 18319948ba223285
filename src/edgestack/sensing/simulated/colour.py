"""A simulated colour sensor over a conveyor belt: red, green, blue and clear channels in counts.

Objects of colours from `COLOURS` pass under the sensor one after another, a second or so each,
with dark belt between them; the sensor's own lamp lights them, so a reading is the lamp's light
reflected in each band plus some ambient light, in 16-bit counts as an RGBC sensor reports them.
`inject("glare")` lets in stray light (a door opened, the sun) for two seconds.

    sensor = ColourSimulator(seed=1)
    chunk = sensor.read(100)   # red, green, blue, clear
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

__all__ = ["COLOURS", "ColourSimulator"]

# Reflectance in the red, green and blue bands.
_REFLECTANCE = {
    "red": (0.70, 0.10, 0.08),
    "green": (0.10, 0.55, 0.15),
    "blue": (0.08, 0.15, 0.60),
    "yellow": (0.75, 0.70, 0.10),
    "orange": (0.80, 0.35, 0.05),
    "white": (0.85, 0.85, 0.85),
    "black": (0.05, 0.05, 0.05),
}
COLOURS = tuple(_REFLECTANCE)
_BELT = np.array([0.12, 0.12, 0.13])
_LAMP_COUNTS = 30_000.0  # a white reflector's reading in each band
_AMBIENT_COUNTS = 400.0
_GLARE_COUNTS = 15_000.0
_GLARE_S, _GLARE_EDGE_S = 2.0, 0.3
_EDGE_S = 0.08  # the sensor's spot takes this long to cross an object's edge
_MAX_COUNTS = 65_535.0


@dataclass(frozen=True)
class _Item:
    """A stretch of empty belt, then one object."""

    gap_s: float
    length_s: float
    red: float
    green: float
    blue: float


@SOURCES.register("colour")
class ColourSimulator(Simulator):
    """An RGBC colour sensor watching objects pass on a conveyor; implements `Source`."""

    events = ("glare",)

    def __init__(
        self,
        seed: int = 0,
        rate_hz: Annotated[float, Field(gt=0, le=1000)] = 20.0,
        start: float | None = None,
        defects: Defects = NOMINAL,
    ) -> None:
        super().__init__(
            seed,
            rate_hz,
            start,
            defects,
            [
                Channel(band, "count", 20.0, 20_000.0, 0.0, _MAX_COUNTS, relative_noise=0.01)
                for band in ("red", "green", "blue", "clear")
            ],
        )
        optics, items = self._streams(2)
        # Each sensor's bands differ a little in gain; the clear band sees all three and some IR.
        self._gain = optics.uniform(0.9, 1.1, 3)
        self._clear_ir = optics.uniform(0.05, 0.15)

        def draw(rng: np.random.Generator) -> tuple[float, _Item]:
            gap, length = rng.uniform(0.4, 1.5), rng.uniform(0.6, 1.4)
            colour = _REFLECTANCE[COLOURS[int(rng.random() * len(COLOURS))]]
            tint = rng.uniform(0.9, 1.1, 3)  # no two objects of a colour are quite alike
            red, green, blue = np.clip(np.array(colour) * tint, 0.0, 1.0)
            return gap + length, _Item(gap, length, red, green, blue)

        self._items = Episodes(items, self.rate_hz, draw)
        self._glare = Occurrences(self.rate_hz)

    def _event(self, kind: str, severity: float) -> None:
        self._glare.add(self._index, severity, _GLARE_S + 2 * _GLARE_EDGE_S)

    def _signal(self, index: np.ndarray) -> np.ndarray:
        params, which, tau, _ = self._items.at(index)
        gap, length = gather(params, "gap_s", which), gather(params, "length_s", which)
        under = trapezoid(tau - gap, _EDGE_S, length - 2 * _EDGE_S, _EDGE_S)
        colour = np.vstack([gather(params, band, which) for band in ("red", "green", "blue")])
        reflectance = _BELT[:, None] + under[None, :] * (colour - _BELT[:, None])
        ambient = np.full(index.size, _AMBIENT_COUNTS)
        for tau_glare, severity in self._glare.at(index):
            ambient += (
                _GLARE_COUNTS
                * severity
                * trapezoid(tau_glare, _GLARE_EDGE_S, _GLARE_S, _GLARE_EDGE_S)
            )
        rgb = self._gain[:, None] * (_LAMP_COUNTS * reflectance + ambient[None, :])
        clear = rgb.sum(axis=0) / 3 * (1 + self._clear_ir)
        return np.vstack([rgb, clear])
