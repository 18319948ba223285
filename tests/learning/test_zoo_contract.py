"""One contract over every registered trainer: fit, export, and the export agrees."""

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import pytest
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from edgestack.learning import TRAINERS, NetTrainer, OnnxPredictor, Trainer

from .motor import ACCEL, WINDOW, motor_features, motor_windows


@dataclass(frozen=True)
class Case:
    data: str  # "features", "windows" or "digits"
    params: dict[str, Any]
    floor: float  # held-out accuracy, or ROC AUC of faults against normal for a detector


# Small settings keep the whole contract to seconds; the defaults train longer.
CASES = {
    "decision_tree": Case("features", {}, 0.9),
    "random_forest": Case("features", {"n_estimators": 30}, 0.95),
    "gradient_boosting": Case("features", {"n_estimators": 30}, 0.95),
    "svm": Case("features", {}, 0.95),
    "logistic_regression": Case("features", {}, 0.95),
    "mlp": Case("features", {}, 0.95),
    "cnn1d": Case("windows", {"shape": (ACCEL, WINDOW), "epochs": 10}, 0.9),
    "cnn1d_exits": Case("windows", {"shape": (ACCEL, WINDOW), "epochs": 10}, 0.9),
    "minirocket": Case("windows", {"shape": (ACCEL, WINDOW), "features": 1000}, 0.9),
    "cnn2d": Case("digits", {"shape": (1, 8, 8), "epochs": 4, "filters": 8}, 0.9),
    "isolation_forest": Case("features", {"n_estimators": 30}, 0.95),
    "autoencoder": Case("features", {"epochs": 40}, 0.95),
}


@dataclass(frozen=True)
class Fitted:
    name: str
    trainer: Trainer
    onnx: bytes
    labels: list[str]
    x_test: np.ndarray
    y_test: np.ndarray


@pytest.fixture(scope="module")
def datasets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    digits = load_digits()
    return {
        "features": motor_features(),
        "windows": motor_windows(),
        "digits": (digits.data.astype(np.float32), digits.target.astype(np.int64)),
    }


@pytest.fixture(scope="module", params=sorted(CASES))
def fitted(request: pytest.FixtureRequest, datasets: dict) -> Fitted:
    name = request.param
    case = CASES[name]
    x, y = datasets[case.data]
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, stratify=y, random_state=0
    )
    trainer = TRAINERS.build(name, case.params)
    if trainer.task == "anomaly":
        normal = y_train == 0
        trainer.fit(x_train[normal], y_train[normal], seed=0)
        labels = ["normal", "anomaly"]
        y_test = (y_test != 0).astype(np.int64)
    else:
        trainer.fit(x_train, y_train, seed=0)
        labels = [str(c) for c in range(int(y.max()) + 1)]
    return Fitted(name, trainer, trainer.to_onnx(), labels, x_test, y_test)


def test_the_table_covers_exactly_the_registered_trainers() -> None:
    assert sorted(CASES) == TRAINERS.names()


def test_the_export_agrees_with_the_native_model(fitted: Fitted) -> None:
    native = fitted.trainer.predict_proba(fitted.x_test)

    indices, probabilities = OnnxPredictor(fitted.onnx, fitted.labels).predict(fitted.x_test)

    assert np.mean(indices == native.argmax(axis=1)) >= 0.999
    assert probabilities == pytest.approx(native, abs=1e-4)


def test_held_out_rows_are_told_apart(fitted: Fitted) -> None:
    indices, probabilities = OnnxPredictor(fitted.onnx, fitted.labels).predict(fitted.x_test)

    if fitted.trainer.task == "anomaly":
        quality = roc_auc_score(fitted.y_test, probabilities[:, 1])
    else:
        quality = np.mean(indices == fitted.y_test)
    assert quality >= CASES[fitted.name].floor


def test_the_export_takes_features_and_gives_only_probabilities(fitted: Fitted) -> None:
    model = onnx.load_from_string(fitted.onnx)
    width = fitted.x_test.shape[1]

    one, _ = OnnxPredictor(fitted.onnx, fitted.labels).predict(fitted.x_test[:1])
    _, many = OnnxPredictor(fitted.onnx, fitted.labels).predict(fitted.x_test[:5])

    [model_input] = model.graph.input
    [output] = model.graph.output
    assert model_input.name == "features"
    assert [d.dim_value for d in model_input.type.tensor_type.shape.dim][1:] == [width]
    assert output.name == "probabilities"
    assert output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {17}
    assert one.shape == (1,)
    assert many.dtype == np.float32 and many.shape == (5, len(fitted.labels))
    assert many.sum(axis=1) == pytest.approx(np.ones(5), abs=1e-5)
    assert ((many >= 0) & (many <= 1 + 1e-6)).all()  # a forest's float32 average may round up


@pytest.mark.parametrize("name", sorted(CASES))
def test_predicting_or_exporting_before_fit_is_refused(name: str) -> None:
    trainer = TRAINERS.build(name, CASES[name].params)

    with pytest.raises(RuntimeError, match=r"not fitted; call fit\(x, y, seed=...\)"):
        trainer.predict_proba(np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(RuntimeError, match="not fitted"):
        trainer.to_onnx()


@pytest.mark.parametrize("name", ["cnn1d", "cnn2d"])
def test_a_net_exposes_its_module_and_fine_tunes_towards_soft_targets(
    name: str, datasets: dict
) -> None:
    import torch

    case = CASES[name]
    x, y = (part[::4] for part in datasets[case.data])
    trainer = TRAINERS.build(name, case.params | {"epochs": 1})
    trainer.fit(x, y, seed=1)
    assert isinstance(trainer, NetTrainer) and isinstance(trainer.module, torch.nn.Module)
    before = [p.detach().clone() for p in trainer.module.parameters()]
    classes = int(y.max()) + 1
    teacher = np.full((len(y), classes), 0.1 / (classes - 1), dtype=np.float32)
    teacher[np.arange(len(y)), y] = 0.9

    trainer.fine_tune(x, teacher, seed=1, epochs=1)

    after = list(trainer.module.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))
    labels = [str(c) for c in range(classes)]
    indices, _ = OnnxPredictor(trainer.to_onnx(), labels).predict(x)
    assert np.mean(indices == trainer.predict_proba(x).argmax(axis=1)) >= 0.999


def test_a_classifier_refuses_classes_that_are_missing_from_its_rows() -> None:
    trainer = TRAINERS.build("decision_tree")
    x = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)

    with pytest.raises(ValueError, match=r"y: classes \[0, 2\]"):
        trainer.fit(x, np.array([0, 0, 0, 2, 2, 2]), seed=0)


def test_an_anomaly_detector_refuses_faulty_rows() -> None:
    trainer = TRAINERS.build("isolation_forest")
    x = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)

    with pytest.raises(ValueError, match="normal rows only"):
        trainer.fit(x, np.array([0, 0, 0, 1, 1, 1]), seed=0)


def test_a_cnn_refuses_a_shape_that_does_not_fold_the_columns() -> None:
    trainer = TRAINERS.build("cnn1d", {"shape": (3, 64)})
    x = np.zeros((8, 100), dtype=np.float32)

    with pytest.raises(
        ValueError, match=r"shape: \(3, 64\) folds 192 columns but the rows have 100"
    ):
        trainer.fit(x, np.array([0, 1] * 4), seed=0)
