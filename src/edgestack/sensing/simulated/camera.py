"""A simulated grayscale camera: frames of intensity 0 (black) to 1 (white).

One object at a time crosses the view on a straight line, entering at one edge and leaving at
the opposite one: a bright circle, square or triangle (`SHAPES`) a few pixels across on a dim,
slightly uneven background. `inject("flash")` overexposes the frames for about 0.4 s.

    camera = CameraSimulator(seed=1, height=32, width=32)
    chunk = camera.read(5)   # data (1, 5, 32, 32): channel "camera", unit "intensity"
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

__all__ = ["SHAPES", "CameraSimulator"]

SHAPES = ("circle", "square", "triangle")
_FLASH_S, _FLASH_EDGE_S = 0.3, 0.05


@dataclass(frozen=True)
class _Crossing:
    """An object crossing the view from (x0, y0) to (x1, y1), in pixels."""

    shape: int
    radius: float
    brightness: float
    x0: float
    y0: float
    x1: float
    y1: float


@SOURCES.register("camera")
class CameraSimulator(Simulator):
    """A camera watching simple shapes cross its view; implements `Source`."""

    events = ("flash",)

    def __init__(
        self,
        seed: int = 0,
        rate_hz: Annotated[float, Field(gt=0, le=120)] = 5.0,
        start: float | None = None,
        height: Annotated[int, Field(ge=8, le=512)] = 32,
        width: Annotated[int, Field(ge=8, le=512)] = 32,
        defects: Defects = NOMINAL,
    ) -> None:
        channel = Channel("camera", "intensity", 0.02, 1.0, 0.0, 1.0)
        super().__init__(seed, rate_hz, start, defects, [channel], frame=(height, width))
        scene, crossings = self._streams(2)
        rows, cols = np.mgrid[0:height, 0:width]
        self._rows, self._cols = rows.astype(float), cols.astype(float)
        tilt = scene.uniform(-0.08, 0.08, 2)
        # scipy loads here, not at import: about 30 MB that an agent without a camera never needs.
        from scipy.ndimage import gaussian_filter

        texture = gaussian_filter(scene.standard_normal((height, width)), 2.0, mode="wrap")
        self._background = (
            scene.uniform(0.15, 0.3)
            + tilt[0] * (rows / height - 0.5)
            + tilt[1] * (cols / width - 0.5)
            + 0.03 * texture / texture.std()
        )
        scale = min(height, width)

        def draw(rng: np.random.Generator) -> tuple[float, _Crossing]:
            radius = rng.uniform(0.1, 0.2) * scale
            # Enter at a random point of one edge and leave at a random point of the opposite one.
            a, b = rng.uniform(0.15, 0.85, 2)
            across = [(-radius, a * height), (width + radius, b * height)]
            if rng.random() < 0.5:
                across = [(a * width, -radius), (b * width, height + radius)]
            if rng.random() < 0.5:
                across.reverse()
            (x0, y0), (x1, y1) = across
            crossing = _Crossing(
                int(rng.random() * len(SHAPES)), radius, rng.uniform(0.65, 0.95), x0, y0, x1, y1
            )
            return rng.uniform(2.0, 6.0), crossing

        self._crossings = Episodes(crossings, self.rate_hz, draw)
        self._flashes = Occurrences(self.rate_hz)

    def _event(self, kind: str, severity: float) -> None:
        self._flashes.add(self._index, severity, _FLASH_S + 2 * _FLASH_EDGE_S)

    def _signal(self, index: np.ndarray) -> np.ndarray:
        params, which, tau, length = self._crossings.at(index)
        done = (tau / length)[:, None, None]

        def per_frame(field: str) -> np.ndarray:
            return gather(params, field, which)[:, None, None]

        x = per_frame("x0") + (per_frame("x1") - per_frame("x0")) * done
        y = per_frame("y0") + (per_frame("y1") - per_frame("y0")) * done
        radius = per_frame("radius")
        u, v = (self._cols - x) / radius, (self._rows - y) / radius
        shape = per_frame("shape")
        inside = np.where(
            shape == 0,
            u**2 + v**2 <= 1,
            np.where(
                shape == 1,
                np.maximum(np.abs(u), np.abs(v)) <= 0.8,
                (v <= 0.5) & (np.abs(u) * np.sqrt(3) <= v + 1),  # apex up
            ),
        )
        frames = np.where(inside, per_frame("brightness"), self._background)
        for tau_flash, severity in self._flashes.at(index):
            flash = trapezoid(tau_flash, _FLASH_EDGE_S, _FLASH_S, _FLASH_EDGE_S)
            frames = frames + 0.7 * severity * flash[:, None, None]
        return frames[None]
