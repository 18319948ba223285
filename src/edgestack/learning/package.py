"""A fitted model as a bundle, measured as a device runs it."""

from collections.abc import Sequence

from edgestack.bundle import Bundle, Calibration, InputSpec
from edgestack.learning.fit import FitResult, Rows
from edgestack.learning.optimize.measure import measure
from edgestack.monitoring import calibration, reference
from edgestack.predictor import OnnxPredictor

__all__ = ["calibrate", "package"]


def package(result: FitResult, *, name: str, spec: InputSpec, runs: int = 200) -> Bundle:
    """The bundle of `result` as model `name` on inputs `spec`, with its metrics, lineage,
    reference statistics of the training rows for drift, and footprint, measured on its
    held-out rows as `optimise` measures each candidate: so a trained model is checked against
    device profiles when it is deployed, like an optimised one. Its calibration on those rows
    lets the hub estimate its accuracy live, without labels. The hub numbers the version
    when it registers the bundle.

    Raises `pydantic.ValidationError` for a bad `name` before measuring anything, and
    `MeasurementError` when ONNX Runtime cannot run the model.
    """
    unmeasured = Bundle.create(
        name=name,
        labels=result.labels,
        input=spec,
        model=result.onnx,
        metrics=result.metrics(),
        lineage=result.lineage,
        reference=reference(result.train.x),
        calibration=calibrate(result.onnx, result.labels, result.test),
    )
    measured = measure(result.onnx, result.test.x, result.test.y, runs=runs)
    return Bundle(
        unmeasured.manifest.model_copy(update={"footprint": measured.footprint}), result.onnx
    )


def calibrate(model: bytes, labels: Sequence[str], held_out: Rows) -> Calibration:
    """How often `model` is right on `held_out` per bin of its top-class probability, run
    through ONNX Runtime as a device runs it."""
    _, probabilities = OnnxPredictor(model, labels).predict(held_out.x)
    return calibration(probabilities, held_out.y)
