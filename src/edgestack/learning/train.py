"""Training a window classifier and exporting it, preprocessing included, to ONNX."""

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from edgestack.bundle import StageSpec
from edgestack.learning.predictor import LABELS_KEY, OnnxPredictor
from edgestack.processing import TRANSFORMS

__all__ = ["TrainedModel", "train_classifier"]

_MIN_PER_LABEL = 8  # enough windows to put some of each label in both the train and test split
# Pinned, so a device with an older ONNX Runtime loads what a newer trainer exports.
_ONNX_OPSET = {"": 17, "ai.onnx.ml": 3}


@dataclass(frozen=True)
class TrainedModel:
    """An ONNX classifier taking float32 `features [None, F]`, and how it did on held-out rows.

    `labels` are in the order of the model's probability columns. `metrics` holds `accuracy`,
    `macro_f1` (both measured through the ONNX model), `n_train`, `n_test` and `onnx_agreement`,
    the share of held-out rows where the ONNX model and scikit-learn pick the same label.
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
    x, y, classes = _validated(features, labels, test_size)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, stratify=y, random_state=seed
    )
    # Capped leaves keep the ONNX file under ~2 MB however large or noisy the data; separable
    # fault windows need far fewer.
    forest = RandomForestClassifier(
        n_estimators=100, max_leaf_nodes=128, min_samples_leaf=2, random_state=seed, n_jobs=1
    )
    transforms = [
        (f"{i}-{stage.kind}", TRANSFORMS.build(stage.kind, stage.params, where=f"preprocess[{i}]"))
        for i, stage in enumerate(preprocess)
    ]
    model = Pipeline([*transforms, ("forest", forest)])
    model.fit(x_train, y_train)

    exported = to_onnx(
        model,
        initial_types=[("features", FloatTensorType([None, x.shape[1]]))],
        options={RandomForestClassifier: {"zipmap": False}},
        target_opset=_ONNX_OPSET,
    )
    exported.metadata_props.add(key=LABELS_KEY, value=json.dumps(classes))
    onnx = exported.SerializeToString()

    predicted, _ = OnnxPredictor(onnx, classes).predict(x_test)
    reference = model.predict(x_test)
    metrics = {
        "accuracy": float(accuracy_score(y_test, predicted)),
        "macro_f1": float(f1_score(y_test, predicted, average="macro")),
        "n_train": float(len(y_train)),
        "n_test": float(len(y_test)),
        "onnx_agreement": float(np.mean(predicted == reference)),
    }
    return TrainedModel(onnx=onnx, labels=classes, metrics=metrics)


def _validated(
    features: np.ndarray, labels: Sequence[str], test_size: float
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows as float32, labels as indices into the sorted distinct labels, and those labels."""
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"features: shape {x.shape}, expected (rows, features)")
    if len(labels) != len(x):
        raise ValueError(
            f"labels: {len(labels)} given for {len(x)} feature rows; give one label per row"
        )
    if not np.isfinite(x).all():
        rows = np.flatnonzero(~np.isfinite(x).all(axis=1))
        raise ValueError(
            f"features: {len(rows)} rows hold NaN or infinity (first: row {rows[0]}); "
            "drop or repair them before training"
        )
    if not 0 < test_size < 1:
        raise ValueError(f"test_size: {test_size}, expected a share between 0 and 1")
    counts = Counter(labels)
    if len(counts) < 2:
        raise ValueError(
            f"labels: only {sorted(counts)} present; a classifier needs at least 2 distinct labels"
        )
    for label, count in sorted(counts.items()):
        if count < _MIN_PER_LABEL:
            raise ValueError(
                f"labels: {label!r} has {count} rows; at least {_MIN_PER_LABEL} per label are "
                "needed, collect more windows of it"
            )
    classes = sorted(counts)
    index = {label: i for i, label in enumerate(classes)}
    return x, np.array([index[label] for label in labels], dtype=np.int64), classes
