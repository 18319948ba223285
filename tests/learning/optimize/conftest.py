"""Models fitted once per test session, small enough to fit fast: on scikit-learn's digits,
and on raw windows with a shape somewhere in them for the convolution models."""

import logging

import numpy as np
import pytest
from sklearn.datasets import load_digits

from edgestack.learning import FitResult, fit
from edgestack.learning.optimize import Baseline

from ..shapes import CHANNELS, SIZE, placed_shapes


def _fitted(trainer: str, params: dict[str, object]) -> FitResult:
    x, y = load_digits(return_X_y=True)
    return fit(trainer, x.astype(np.float32), [str(v) for v in y], params=params, seed=0)


def baseline_of(result: FitResult) -> Baseline:
    return Baseline(
        result.onnx,
        result.labels,
        result.train.x,
        result.train.y,
        result.lineage,
        result.trainer,
    )


@pytest.fixture(scope="session")
def mlp() -> FitResult:
    return _fitted("mlp", {"hidden": [128, 128], "max_iter": 60})


@pytest.fixture(scope="session")
def forest() -> FitResult:
    return _fitted("random_forest", {"n_estimators": 10})


@pytest.fixture(scope="session")
def cnn() -> FitResult:
    # The exporter logs each opset conversion; routine here.
    for logger in ("torch.onnx", "onnxscript"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    return _fitted("cnn2d", {"shape": [1, 8, 8], "filters": 8, "epochs": 4})


def _raw_fitted(trainer: str, params: dict[str, object]) -> FitResult:
    x, y = placed_shapes(160, seed=6)
    labels = [["sine", "square"][c] for c in y]
    return fit(trainer, x, labels, params={"shape": [CHANNELS, SIZE], **params}, seed=0)


@pytest.fixture(scope="session")
def rocket() -> FitResult:
    return _raw_fitted("minirocket", {"features": 1000})


@pytest.fixture(scope="session")
def cnn1d() -> FitResult:
    return _raw_fitted("cnn1d", {"filters": 8})
