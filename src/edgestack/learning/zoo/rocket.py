"""MiniRocket over raw windows: a fixed random-convolution transform and a linear head,
exported as one ONNX graph (fold, convolutions, comparisons, means, head, softmax)."""

from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import Field
from scipy.special import softmax

from edgestack.learning.trainer import TRAINERS
from edgestack.learning.zoo._rows import as_rows, check_fold, checked, not_fitted

if TYPE_CHECKING:
    from torch import nn

    from edgestack.learning.zoo._rocket import MiniRocket

__all__ = ["MiniRocketTrainer"]

# Ridge penalties tried by leave-one-out cross-validation, as the paper's classifier does.
_ALPHAS = np.logspace(-3, 3, 10)


@TRAINERS.register("minirocket")
class MiniRocketTrainer:
    """MiniRocket's features of each window (`features` of them, rounded to a multiple of 84),
    standardised, then ridge regression on the classes with the penalty chosen by leave-one-out
    cross-validation; the class scores go through softmax. `shape` is `(channels, size)`, the
    columns channel-major, as the `raw` extractor gives them.

    Once fitted, `module` is the whole model as a `torch.nn.Module` (rows in, class scores
    out) and `transform` its feature part.
    """

    task: Literal["classify", "anomaly"] = "classify"

    def __init__(
        self,
        shape: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=9)]],
        features: Annotated[int, Field(ge=84, le=50_000)] = 10_000,
    ) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.features = features
        self.module: nn.Sequential | None = None
        self._parts: tuple[MiniRocket, nn.Linear] | None = None

    def fit(self, x: np.ndarray, y: np.ndarray, *, seed: int) -> None:
        import torch
        from sklearn.linear_model import RidgeClassifierCV
        from sklearn.preprocessing import StandardScaler
        from torch import nn

        from edgestack.learning.zoo import _rocket

        rows, classes, n_classes = checked(x, y, self.task)
        check_fold(self.shape, rows)
        transform = _rocket.fit_transform(rows, self.shape, self.features, seed)
        ppv = transform.transform(rows)
        scaler = StandardScaler().fit(ppv)
        ridge = RidgeClassifierCV(alphas=_ALPHAS).fit(scaler.transform(ppv), classes)
        coef = np.atleast_2d(ridge.coef_) / scaler.scale_
        intercept = np.atleast_1d(ridge.intercept_) - coef @ scaler.mean_
        if n_classes == 2:
            # One score, positive for class 1: as columns, 0 for class 0 and the score for 1.
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.concatenate([[0.0], intercept])
        head = nn.Linear(ppv.shape[1], n_classes)
        head.weight.data = torch.as_tensor(coef, dtype=torch.float32)
        head.bias.data = torch.as_tensor(intercept, dtype=torch.float32)
        self._parts = (transform, head.requires_grad_(False))
        self.module = nn.Sequential(*self._parts)

    @property
    def transform(self) -> "MiniRocket":
        """The fitted MiniRocket transform: rows in, PPV features out."""
        if self._parts is None:
            not_fitted(self, "transform")
        return self._parts[0]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        import torch

        if self._parts is None:
            not_fitted(self, "predict_proba")
        transform, head = self._parts
        ppv = transform.transform(as_rows(x))
        with torch.no_grad():
            scores = head(torch.from_numpy(ppv)).numpy()
        return np.asarray(softmax(scores, axis=1), dtype=np.float32)

    def to_onnx(self) -> bytes:
        from torch import nn

        from edgestack.learning.zoo import _torch

        probabilities = nn.Sequential(self._fitted("to_onnx"), nn.Softmax(dim=1))
        width = self.shape[0] * self.shape[1]
        return _torch.export(probabilities, width, "probabilities").SerializeToString()

    def _fitted(self, action: str) -> "nn.Sequential":
        if self.module is None:
            not_fitted(self, action)
        return self.module
