"""Training the default window classifier: a random forest behind the app's row transforms."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgestack.bundle import StageSpec
from edgestack.learning.fit import fit

__all__ = ["TrainedModel", "train_classifier"]


@dataclass(frozen=True)
class TrainedModel:
    """An ONNX classifier taking float32 `features [None, F]`, and how it did on held-out rows.

    `labels` are in the order of the model's probability columns. `metrics` holds `accuracy`,
    `macro_f1` (both measured through the ONNX model), per-class `precision.<label>`,
    `recall.<label>` and `f1.<label>`, `n_train`, `n_test` and `onnx_agreement`, the share of
    held-out rows where the ONNX model and scikit-learn pick the same label.
    """

    onnx: bytes
    labels: list[str]
    metrics: dict[str, float]


def train_classifier(
    features: np.ndarray,
    labels: Sequence[str],
    *,
    seed: int = 0,
    test_size: float = 0.25,
    preprocess: Sequence[StageSpec] = (StageSpec(kind="standardise"),),
) -> TrainedModel:
    """Fit row transforms (an app spec's `model.preprocess`; a scaler by default) and a random
    forest on a stratified split; export both as one ONNX graph; evaluate the export.

    trained = train_classifier(rows, ["normal", "bearing_wear", ...])
    trained.metrics["accuracy"]
    """
    result = fit(
        "random_forest",
        features,
        labels,
        params={"preprocess": list(preprocess)},
        seed=seed,
        test_size=test_size,
    )
    return TrainedModel(onnx=result.onnx, labels=result.labels, metrics=result.metrics())
