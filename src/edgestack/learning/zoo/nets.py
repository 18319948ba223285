"""PyTorch nets trained on CPU with Adam: a 1D-CNN over raw windows and a 2D-CNN over images,
each folding its feature columns back into their shape inside the exported graph."""

from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import Field
from scipy.special import softmax

from edgestack.learning.trainer import TRAINERS
from edgestack.learning.zoo._rows import as_rows, checked, not_fitted

if TYPE_CHECKING:
    import torch
    from torch import nn

    from edgestack.learning.zoo._torch import EpochDone

__all__ = ["Cnn1d", "Cnn2d", "NetTrainer"]

Positive = Annotated[int, Field(ge=1)]
Rate = Annotated[float, Field(gt=0, le=1)]


class NetTrainer:
    """A PyTorch net over feature rows, trained on CPU with Adam for `epochs` passes.

    Once fitted, `module` is the native `torch.nn.Module`: float32 rows `(n, F)` in, logits
    `(n, classes)` out (an anomaly detector gives its raw score `(n, 1)`). Its scaling and fold
    are layers of it, so whatever rewrites it (pruning, distillation) keeps them; `fine_tune`
    trains it further, `to_onnx` exports it as it is then. `on_epoch(done, total)`, when set,
    is called after each epoch.
    """

    task: Literal["classify", "anomaly"] = "classify"

    def __init__(self, epochs: int, batch_size: int, learning_rate: float) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.module: nn.Module | None = None
        self.on_epoch: EpochDone | None = None

    def build(self, x: np.ndarray, classes: int) -> "nn.Module":
        """A fresh module for rows like `x`, its scaling fitted on them."""
        raise NotImplementedError

    def fit(self, x: np.ndarray, y: np.ndarray, *, seed: int) -> None:
        from edgestack.learning.zoo import _torch

        rows, classes, n_classes = checked(x, y, self.task)
        with _torch.seeded(seed):
            self.module = self.build(rows, n_classes)
        self.fine_tune(rows, classes, seed=seed)

    def fine_tune(
        self,
        x: np.ndarray,
        target: np.ndarray,
        *,
        seed: int,
        epochs: int | None = None,
        learning_rate: float | None = None,
    ) -> None:
        """Train `module` further on rows `x` towards `target`: int class indices `(n,)`, or
        float probabilities `(n, classes)` such as a teacher's, for distillation."""
        from edgestack.learning.zoo import _torch

        module = self._fitted("fine_tune")
        goal = np.asarray(target)
        goal = goal.astype(np.float32 if np.issubdtype(goal.dtype, np.floating) else np.int64)
        _torch.train(
            module,
            as_rows(x),
            goal,
            self.loss,
            epochs=self.epochs if epochs is None else epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate if learning_rate is None else learning_rate,
            seed=seed,
            on_epoch=self.on_epoch,
        )

    def loss(self, output: "torch.Tensor", target: "torch.Tensor") -> "torch.Tensor":
        from torch.nn.functional import cross_entropy

        return cross_entropy(output, target)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        from edgestack.learning.zoo import _torch

        logits = _torch.forward(self._fitted("predict_proba"), as_rows(x))
        return np.asarray(softmax(logits, axis=1), dtype=np.float32)

    def to_onnx(self) -> bytes:
        from torch import nn

        from edgestack.learning.zoo import _torch

        probabilities = nn.Sequential(self._fitted("to_onnx"), nn.Softmax(dim=1))
        return _torch.export(probabilities, self.n_features, "probabilities").SerializeToString()

    @property
    def n_features(self) -> int:
        """Columns `module` takes: the width of its first layer, the scaling."""
        from edgestack.learning.zoo._torch import Standardise

        module = self._fitted("n_features")
        scale = next(m for m in module.modules() if isinstance(m, Standardise))
        return int(scale.mean.shape[0])

    def _fitted(self, action: str) -> "nn.Module":
        if self.module is None:
            not_fitted(self, action)
        return self.module


def _folds(shape: tuple[int, ...], x: np.ndarray) -> None:
    if int(np.prod(shape)) != x.shape[1]:
        raise ValueError(
            f"shape: {shape} folds {int(np.prod(shape))} columns but the rows have "
            f"{x.shape[1]}; give a shape whose product is the number of feature columns"
        )


@TRAINERS.register("cnn1d")
class Cnn1d(NetTrainer):
    """A 1D-CNN over raw windows: `shape` is `(channels, size)`, the columns channel-major."""

    def __init__(
        self,
        shape: tuple[Positive, Annotated[int, Field(ge=8)]],
        filters: Positive = 16,
        epochs: Positive = 30,
        batch_size: Positive = 32,
        learning_rate: Rate = 3e-3,
    ) -> None:
        super().__init__(epochs, batch_size, learning_rate)
        self.shape = tuple(shape)
        self.filters = filters

    def build(self, x: np.ndarray, classes: int) -> "nn.Module":
        from edgestack.learning.zoo import _torch

        _folds(self.shape, x)
        return _torch.cnn1d(x, classes, (self.shape[0], self.shape[1]), self.filters)


@TRAINERS.register("cnn2d")
class Cnn2d(NetTrainer):
    """A small 2D-CNN over images: `shape` is `(channels, height, width)`, the columns
    channel-major, then row by row (as the `image` extractor gives them)."""

    def __init__(
        self,
        shape: tuple[Positive, Annotated[int, Field(ge=4)], Annotated[int, Field(ge=4)]],
        filters: Positive = 16,
        epochs: Positive = 10,
        batch_size: Positive = 32,
        learning_rate: Rate = 3e-3,
    ) -> None:
        super().__init__(epochs, batch_size, learning_rate)
        self.shape = tuple(shape)
        self.filters = filters

    def build(self, x: np.ndarray, classes: int) -> "nn.Module":
        from edgestack.learning.zoo import _torch

        _folds(self.shape, x)
        channels, height, width = self.shape
        return _torch.cnn2d(x, classes, (channels, height, width), self.filters)
