"""The optimiser contract, what every optimiser starts from, and the registry of them all.

An optimiser turns one trained model into a candidate that should cost less to run: a
rewritten graph (`fp16`, `int8_static`, ...) or a retrained net (`pruned`, `distilled`).

    optimiser = OPTIMISERS.build("int8_static")
    candidate = optimiser.apply(baseline)       # ONNX bytes, same input and output as before
"""

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edgestack.bundle import Lineage
from edgestack.learning.trainer import Trainer
from edgestack.registry import Registry

__all__ = ["OPTIMISERS", "Baseline", "NotApplicable", "Optimiser"]


class NotApplicable(Exception):
    """This optimiser has nothing to do for this model; the message says why."""


@dataclass(frozen=True)
class Baseline:
    """A trained model as its optimisers see it: the ONNX export, the rows it was trained on
    (for calibration, fine-tuning and distillation), how it was trained, and the fitted
    native model when there is one (`None` when only the ONNX graph is known)."""

    onnx: bytes
    labels: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    lineage: Lineage
    trainer: Trainer | None = None


class Optimiser(Protocol):
    """Makes one candidate from a baseline. Raises `NotApplicable` when the model offers it
    nothing to work on; any other exception means the candidate failed to build."""

    def apply(self, baseline: Baseline) -> bytes:
        """A model taking the same `features` and giving the same `probabilities`."""
        ...


OPTIMISERS: Registry[Optimiser] = Registry("optimiser", group="edgestack.optimisers")
