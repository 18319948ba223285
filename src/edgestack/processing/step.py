"""The three kinds of processing stage, and a registry for each.

- A `Step` works on samples, chunk in, chunk out (clean, filter, resample). It carries its state
  across chunks, so feeding a recording in pieces of any size gives the output of feeding it
  whole.
- An `Extractor` turns windows into feature columns, one window at a time.
- A row transform (standardise, normalise, PCA) is fitted offline on feature rows; it is a
  scikit-learn transformer, so training exports it inside the model's ONNX graph.
"""

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from edgestack.registry import Registry
from edgestack.sensing import Chunk, Quality

__all__ = ["EXTRACTORS", "STEPS", "TRANSFORMS", "Extractor", "Step"]


class Step(Protocol):
    def push(self, chunk: Chunk, quality: Quality) -> Chunk:
        """Process the next chunk of the stream; count bad input in `quality`, never raise on it."""
        ...

    def reset(self) -> None:
        """Forget the stream so far, as after a gap or a change of source."""
        ...


class Extractor(Protocol):
    def names(self, channels: Sequence[str]) -> list[str]:
        """The columns `__call__` returns for windows of these channels, in order."""
        ...

    def __call__(self, windows: np.ndarray, rate_hz: float) -> np.ndarray:
        """Features of windows `(k, channels, size, *frame)`: float32 `(k, len(names))`, finite."""
        ...


STEPS: Registry[Step] = Registry("step", group="edgestack.steps")
EXTRACTORS: Registry[Extractor] = Registry("feature extractor", group="edgestack.extractors")
TRANSFORMS: Registry[Any] = Registry("row transform", group="edgestack.transforms")
