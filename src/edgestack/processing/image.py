"""The `image` extractor: each window's newest frame, shrunk, normalised and flattened."""

from collections.abc import Sequence
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from edgestack.processing.features import finite_columns, float_windows
from edgestack.processing.step import EXTRACTORS

__all__ = ["Image"]

Pixels = Annotated[int, Field(ge=1, le=1024)]


def _area(size_in: int, size_out: int) -> np.ndarray:
    """`(size_out, size_in)` weights: each output pixel the mean of the input it covers."""
    edges = np.linspace(0.0, size_in, size_out + 1)
    start, stop = edges[:-1, None], edges[1:, None]
    pixel = np.arange(size_in)
    overlap = np.clip(np.minimum(stop, pixel + 1) - np.maximum(start, pixel), 0.0, None)
    weights: np.ndarray = overlap / (stop - start)
    return weights


@EXTRACTORS.register("image")
class Image:
    """Pixels `channel.px0 ..` (row by row) of each window's newest frame `(H, W)`, resized to
    `height` x `width` by area averaging and scaled per frame: `unit` to [0, 1] (min to max),
    `standard` to mean 0 and standard deviation 1. A flat frame gives zeros.

        EXTRACTORS.build("image", {"height": 16, "width": 16})   # 256 columns per camera
    """

    def __init__(
        self, height: Pixels, width: Pixels, scale: Literal["unit", "standard"] = "unit"
    ) -> None:
        self.height = height
        self.width = width
        self.scale = scale

    def names(self, channels: Sequence[str]) -> list[str]:
        pixels = self.height * self.width
        return [f"{channel}.px{i}" for channel in channels for i in range(pixels)]

    def __call__(self, windows: np.ndarray, rate_hz: float) -> np.ndarray:
        if windows.ndim != 5:
            raise ValueError(
                f"image: windows of shape {windows.shape}, expected (k, channels, size, "
                "height, width) from a camera"
            )
        frames = float_windows(windows[:, :, -1])
        rows = _area(frames.shape[-2], self.height)
        cols = _area(frames.shape[-1], self.width)
        small = np.einsum("hH,kcHW,wW->kchw", rows, frames, cols).reshape(
            *frames.shape[:2], self.height * self.width
        )
        if self.scale == "unit":
            low = small.min(axis=-1, keepdims=True, initial=np.inf)
            span = small.max(axis=-1, keepdims=True, initial=-np.inf) - low
        else:
            low = small.mean(axis=-1, keepdims=True)
            span = small.std(axis=-1, keepdims=True)
        flat = ~(span > 1e-12 * (np.abs(low) + span))
        return finite_columns(np.where(flat, 0.0, (small - low) / np.where(flat, 1.0, span)))
