"""A fitted model as a bundle, measured as a device runs it."""

from collections.abc import Sequence

import numpy as np

from edgestack.bundle import Bundle, Calibration, InputSpec, SplitPlan
from edgestack.learning._onnx import with_labels
from edgestack.learning.fit import FitResult, Rows
from edgestack.learning.optimize.measure import measure
from edgestack.learning.zoo.exits import Cnn1dExits
from edgestack.monitoring import calibration, reference
from edgestack.predictor import OnnxPredictor

__all__ = ["calibrate", "package", "package_split"]


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


def package_split(
    trainer: Cnn1dExits,
    plan: SplitPlan,
    *,
    name: str,
    labels: Sequence[str],
    spec: InputSpec,
    int8_from: np.ndarray | None = None,
) -> tuple[Bundle | None, Bundle | None]:
    """The device's bundle and the server's for `trainer`'s net cut as `plan` says, each
    manifest recording the plan (with the int8 tensor's scale and zero point when
    `int8_from` rows are given): the head as model `name` and the tail as `name-tail`; the
    whole net on the device alone when `plan.at` is all of its blocks, or on the server
    alone when 0."""
    if plan.at in (0, plan.blocks):
        whole = Bundle.create(
            name=name,
            labels=list(labels),
            input=spec,
            model=with_labels(trainer.to_onnx(), labels),
            split=plan,
        )
        return (None, whole) if plan.at == 0 else (whole, None)
    cut = trainer.split(plan.at, int8_from=int8_from)
    recorded = SplitPlan.model_validate(
        plan.model_dump() | {"scale": cut.scale, "zero_point": cut.zero_point}
    )
    head, tail = (
        Bundle.create(
            name=model_name,
            labels=list(labels),
            input=spec,
            model=with_labels(graph, labels),
            split=recorded,
        )
        for model_name, graph in ((name, cut.head), (f"{name}-tail", cut.tail))
    )
    return head, tail
