"""MiniRocket over raw windows: a fixed random-convolution transform and a linear head,
exported as one ONNX graph (fold, convolutions, comparisons, means, head, softmax)."""

from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import Field
from scipy.special import softmax

from edgestack.learning.trainer import TRAINERS
from edgestack.learning.zoo._rows import as_rows, check_fold, checked, not_fitted

if TYPE_CHECKING:
    from sklearn.linear_model import RidgeClassifier
    from torch import nn

    from edgestack.learning.zoo._rocket import MiniRocket

__all__ = ["MiniRocketTrainer"]

# Ridge penalties tried by leave-one-out cross-validation, as the paper's classifier does.
_ALPHAS = np.logspace(-3, 3, 10)
# Beyond this many rows the penalty is chosen on a stratified sample of them and the ridge
# refitted on all by an iterative solver: the closed-form leave-one-out costs rows squared
# times features (minutes for ten thousand windows).
_ALPHA_ROWS = 2000


@TRAINERS.register("minirocket")
class MiniRocketTrainer:
    """MiniRocket's features of each window (`features` of them, rounded to a multiple of 84),
    standardised, then ridge regression on the classes with the penalty chosen by leave-one-out
    cross-validation (on a sample of 2000 rows when there are more); the class scores go
    through softmax. `shape` is `(channels, size)`, the
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
        from sklearn.preprocessing import StandardScaler
        from torch import nn

        from edgestack.learning.zoo import _rocket

        rows, classes, n_classes = checked(x, y, self.task)
        check_fold(self.shape, rows)
        transform = _rocket.fit_transform(rows, self.shape, self.features, seed)
        ppv = transform.transform(rows)
        scaler = StandardScaler().fit(ppv)
        ridge = _ridge(scaler.transform(ppv), classes, seed)
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


def _ridge(z: np.ndarray, classes: np.ndarray, seed: int) -> "RidgeClassifier":
    """Ridge on standardised features `z`, its penalty chosen by leave-one-out."""
    from sklearn.linear_model import RidgeClassifier, RidgeClassifierCV
    from sklearn.model_selection import train_test_split

    if len(z) <= _ALPHA_ROWS:
        return RidgeClassifierCV(alphas=_ALPHAS).fit(z, classes)
    sample, _ = train_test_split(
        np.arange(len(z)), train_size=_ALPHA_ROWS, stratify=classes, random_state=seed
    )
    alpha = RidgeClassifierCV(alphas=_ALPHAS).fit(z[sample], classes[sample]).alpha_
    return RidgeClassifier(alpha=alpha, solver="lsqr").fit(z, classes)
