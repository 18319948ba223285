import numpy as np
import pytest

from edgestack.learning import FitResult, OnnxPredictor
from edgestack.learning.optimize import MeasurementError, measure


def test_measure_reports_size_latency_memory_and_the_predictors_accuracy(mlp: FitResult) -> None:
    expected, _ = OnnxPredictor(mlp.onnx, mlp.labels).predict(mlp.test.x)

    measured = measure(mlp.onnx, mlp.test.x, mlp.test.y, runs=30)

    footprint = measured.footprint
    assert footprint.model_bytes == len(mlp.onnx)
    assert footprint.peak_ram_bytes > 0
    assert 0 < footprint.latency_ms_p50 <= footprint.latency_ms_p99
    assert measured.accuracy == pytest.approx(np.mean(expected == mlp.test.y))


def test_a_model_onnx_runtime_cannot_load_raises_its_reason(mlp: FitResult) -> None:
    with pytest.raises(MeasurementError, match=r"\S"):
        measure(b"not a model", mlp.test.x, mlp.test.y, runs=1)


def test_rows_and_classes_that_do_not_match_are_refused_naming_the_field(mlp: FitResult) -> None:
    with pytest.raises(ValueError, match=r"^y: shape"):
        measure(mlp.onnx, mlp.test.x, mlp.test.y[:-1], runs=1)
