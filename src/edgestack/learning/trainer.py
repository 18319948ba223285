"""The trainer contract, and the registry of every model family the zoo offers.

Every trainer takes float32 rows `(n, F)`, the columns a `FeaturePipeline` gives; trainers
that need structure (a 1D-CNN over raw windows, a 2D-CNN over images) take the shape to fold
the columns back into as a parameter, and the fold is part of their ONNX graph. So the hot
path and `OnnxPredictor` treat every exported model alike: input `features` float32
`[None, F]`, output `probabilities` float32 `[None, classes]`.

    trainer = TRAINERS.build("random_forest", {"n_estimators": 50})
    trainer.fit(x_train, y_train, seed=0)          # y: int64 class indices 0..classes-1
    native = trainer.predict_proba(x_test)         # (n, classes)
    onnx_bytes = trainer.to_onnx()                 # agrees with `native` on held-out rows
"""

from typing import Literal, Protocol

import numpy as np

from edgestack.registry import Registry

__all__ = ["TRAINERS", "Trainer"]


class Trainer(Protocol):
    """A model family. Anomaly detectors fit on normal rows only (`y` all 0) and give two
    columns, `[normal, anomaly]`, the second a score in [0, 1] rising with strangeness."""

    task: Literal["classify", "anomaly"]

    def fit(self, x: np.ndarray, y: np.ndarray, *, seed: int) -> None: ...

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities of the native model, float32 `(n, classes)`."""
        ...

    def to_onnx(self) -> bytes:
        """The fitted model, input `features` `[None, F]`, output `probabilities`."""
        ...


TRAINERS: Registry[Trainer] = Registry("trainer", group="edgestack.trainers")
