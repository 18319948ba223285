"""Optimisers that change the net itself, so they need the fitted native model: magnitude
pruning with fine-tuning, and distillation into a smaller student."""

import copy
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from edgestack.learning.optimize.optimiser import OPTIMISERS, Baseline, NotApplicable
from edgestack.learning.trainer import TRAINERS, Trainer
from edgestack.learning.zoo import NetTrainer, SklearnTrainer

__all__ = ["Distilled", "Pruned"]

Share = Annotated[float, Field(gt=0, lt=1)]
Epochs = Annotated[int, Field(ge=1)]


@OPTIMISERS.register("pruned")
class Pruned:
    """The `amount` of weights smallest in magnitude, across every layer, set to zero.

    A PyTorch net is fine-tuned `epochs` passes with the zeros held, then exported. A
    scikit-learn MLP keeps its other weights as they are: it cannot be refitted with weights
    held at zero. Zeros are stored like any weight in ONNX, so pruning shrinks a model only
    once it is compressed; the candidate's measurement shows what it bought.
    """

    def __init__(self, amount: Share = 0.6, epochs: Epochs = 3) -> None:
        self.amount = amount
        self.epochs = epochs

    def apply(self, baseline: Baseline) -> bytes:
        native = _classifier(baseline, "pruning")
        if isinstance(native, NetTrainer):
            return self._net(native, baseline)
        pruned = copy.deepcopy(native)
        pipeline = pruned.pipeline if isinstance(pruned, SklearnTrainer) else None
        coefs: list[np.ndarray] | None = getattr(pipeline and pipeline.steps[-1][1], "coefs_", None)
        if coefs is None:
            raise NotApplicable(f"pruning needs a net; {baseline.lineage.trainer} is not one")
        threshold = np.quantile(np.abs(np.concatenate([w.ravel() for w in coefs])), self.amount)
        for w in coefs:
            w[np.abs(w) < threshold] = 0.0
        return pruned.to_onnx()

    def _net(self, native: NetTrainer, baseline: Baseline) -> bytes:
        from torch import nn
        from torch.nn.utils import prune

        pruned = copy.deepcopy(native)
        pruned.on_epoch = None
        module = pruned.module
        assert module is not None  # a copy of a fitted trainer is fitted
        layers = [
            (m, "weight")
            for m in module.modules()
            if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Linear)
        ]
        prune.global_unstructured(layers, pruning_method=prune.L1Unstructured, amount=self.amount)
        pruned.fine_tune(
            baseline.x_train, baseline.y_train, seed=baseline.lineage.seed, epochs=self.epochs
        )
        for layer, name in layers:
            prune.remove(layer, name)
        return pruned.to_onnx()


@OPTIMISERS.register("distilled")
class Distilled:
    """A student `shrink` times narrower than the teacher, taught on the training rows.

    A PyTorch teacher's student is the same net with `shrink` times fewer filters, fitted
    briefly on the labels, then trained `epochs` passes towards the teacher's probabilities.
    Any other classifier's student is a small MLP (one hidden layer of 32) fitted to the
    teacher's predicted classes: scikit-learn MLPs learn from classes, not probabilities.
    """

    def __init__(self, shrink: Annotated[int, Field(ge=2)] = 2, epochs: Epochs = 5) -> None:
        self.shrink = shrink
        self.epochs = epochs

    def apply(self, baseline: Baseline) -> bytes:
        teacher = _classifier(baseline, "distillation")
        seed = baseline.lineage.seed
        soft = teacher.predict_proba(baseline.x_train)
        if isinstance(teacher, NetTrainer):
            filters = int(baseline.lineage.params.get("filters", 16))
            params: dict[str, Any] = baseline.lineage.params | {
                "filters": max(1, filters // self.shrink),
                "epochs": self.epochs,
            }
            student = TRAINERS.build(baseline.lineage.trainer, params)
            assert isinstance(student, NetTrainer)  # built by the teacher's own trainer
            student.fit(baseline.x_train, baseline.y_train, seed=seed)
            student.fine_tune(baseline.x_train, soft, seed=seed)
            return student.to_onnx()
        student = TRAINERS.build("mlp", {"hidden": (32,)})
        student.fit(baseline.x_train, soft.argmax(axis=1).astype(np.int64), seed=seed)
        return student.to_onnx()


def _classifier(baseline: Baseline, what: str) -> Trainer:
    if baseline.trainer is None:
        raise NotApplicable(f"{what} needs the fitted native model; only the ONNX is known")
    if baseline.trainer.task != "classify":
        raise NotApplicable(
            f"{what} is for classifiers; {baseline.lineage.trainer} detects anomalies"
        )
    return baseline.trainer
