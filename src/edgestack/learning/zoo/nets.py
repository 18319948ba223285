"""PyTorch nets trained on CPU with Adam: a 1D-CNN over raw windows and a 2D-CNN over images,
each folding its feature columns back into their shape inside the exported graph."""

from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import Field
from scipy.special import softmax
from sklearn.model_selection import train_test_split

from edgestack.learning.trainer import TRAINERS
from edgestack.learning.zoo._rows import as_rows, check_fold, checked, not_fitted

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


@TRAINERS.register("cnn1d")
class Cnn1d(NetTrainer):
    """A 1D-CNN over raw windows: `shape` is `(channels, size)`, the columns channel-major.

    Made for small sets: a `validation` share of the training rows (stratified) picks the
    epoch whose weights are kept (fewest of them wrong, then the lowest loss), and training
    stops `patience` epochs after the last better one (`validation` 0: every epoch, the last
    weights). Small batches and many epochs: a few dozen cases make few steps per epoch. With
    `augment`, each batch is shifted in time (circularly, by up to a tenth of the window),
    scaled about each channel's mean by up to 10% and given noise of 5% of each channel's
    deviation.
    """

    def __init__(
        self,
        shape: tuple[Positive, Annotated[int, Field(ge=8)]],
        filters: Positive = 16,
        epochs: Positive = 200,
        batch_size: Positive = 8,
        learning_rate: Rate = 3e-3,
        validation: Annotated[float, Field(ge=0, lt=1)] = 0.2,
        patience: Positive = 30,
        augment: bool = True,
    ) -> None:
        super().__init__(epochs, batch_size, learning_rate)
        self.shape = tuple(shape)
        self.filters = filters
        self.validation = validation
        self.patience = patience
        self.augment = augment

    def build(self, x: np.ndarray, classes: int) -> "nn.Module":
        from edgestack.learning.zoo import _torch

        check_fold(self.shape, x)
        return _torch.cnn1d(x, classes, (self.shape[0], self.shape[1]), self.filters)

    def fit(self, x: np.ndarray, y: np.ndarray, *, seed: int) -> None:
        from edgestack.learning.zoo import _torch

        rows, classes, n_classes = checked(x, y, self.task)
        with _torch.seeded(seed):
            self.module = self.build(rows, n_classes)
        kept, held = _held_out(classes, self.validation, seed)
        _torch.train(
            self.module,
            rows[kept],
            classes[kept],
            self.loss,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            seed=seed,
            on_epoch=self.on_epoch,
            augment=self._augmented if self.augment else None,
            held_out=(rows[held], classes[held]) if len(held) else None,
            patience=self.patience,
        )

    def _augmented(self, batch: "torch.Tensor", generator: "torch.Generator") -> "torch.Tensor":
        import torch

        from edgestack.learning.zoo._torch import Standardise

        channels, size = self.shape
        scale = next(m for m in self._fitted("fit").modules() if isinstance(m, Standardise))
        folded = batch.reshape(len(batch), channels, size)
        mean = folded.mean(dim=2, keepdim=True)
        gain = 1 + 0.1 * (2 * torch.rand(len(batch), channels, 1, generator=generator) - 1)
        reach = size // 10
        shift = int(torch.randint(-reach, reach + 1, (1,), generator=generator))
        noise = torch.randn(folded.shape, generator=generator) * scale.std.reshape(channels, size)
        moved = torch.roll((folded - mean) * gain + mean, shift, dims=2) + 0.05 * noise
        return moved.reshape(len(batch), -1)


def _held_out(classes: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices to train on and to validate on: a stratified `share`, at least one row of each
    class; none held out when `share` is 0 or a class has a single row."""
    everything = np.arange(len(classes))
    counts = np.bincount(classes)
    n_classes = len(counts)
    if share == 0 or counts.min() < 2:
        return everything, everything[:0]
    size = max(n_classes, round(share * len(classes)))
    if len(classes) - size < n_classes:
        return everything, everything[:0]
    kept, held = train_test_split(everything, test_size=size, stratify=classes, random_state=seed)
    return np.sort(kept), np.sort(held)


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

        check_fold(self.shape, x)
        channels, height, width = self.shape
        return _torch.cnn2d(x, classes, (channels, height, width), self.filters)
