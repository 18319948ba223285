import numpy as np
import pytest

from edgestack.learning import fit, package
from edgestack.monitoring import CONFIDENCE_BINS, DriftSketch, expected_correct, psi
from edgestack.predictor import OnnxPredictor
from edgestack.processing import vibration_spec
from edgestack.sensing import FAULTS, Quality

from .motor import motor_features


def test_a_packaged_model_carries_reference_statistics_of_its_training_rows() -> None:
    x, faults = motor_features(seconds=2.0)
    result = fit("decision_tree", x, [FAULTS[k] for k in faults], seed=0)
    spec = vibration_spec()

    bundle = package(result, name="motor", spec=spec, runs=5)

    ref = bundle.manifest.reference
    assert ref is not None
    assert ref.rows == len(result.train.y)
    assert len(ref.edges) == len(spec.features) == x.shape[1]
    # the live sketch of the training rows themselves gives back the reference's shares
    sketch = DriftSketch(ref)
    sketch.update(result.train.x, Quality())
    assert np.allclose(sketch.counts / ref.rows, ref.shares, atol=1e-6)
    assert np.nanmax(psi(ref, sketch.counts)) < 1e-3


def test_a_packaged_model_carries_its_calibration_on_the_held_out_rows() -> None:
    x, faults = motor_features(seconds=2.0)
    result = fit("decision_tree", x, [FAULTS[k] for k in faults], seed=0)

    bundle = package(result, name="motor", spec=vibration_spec(), runs=5)

    calibrated = bundle.manifest.calibration
    assert calibrated is not None
    assert sum(calibrated.rows) == len(result.test.y)
    # estimated on the held-out rows' own confidences, it is their accuracy
    _, probabilities = OnnxPredictor(result.onnx, result.labels).predict(result.test.x)
    counts = np.bincount(
        np.clip((probabilities.max(axis=1) * CONFIDENCE_BINS).astype(int), 0, 9), minlength=10
    )
    estimate = expected_correct(calibrated, counts.tolist()) / len(result.test.y)
    assert estimate == pytest.approx(result.evaluation.accuracy)
