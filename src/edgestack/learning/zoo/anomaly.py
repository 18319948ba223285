"""Anomaly detectors for machines with no recorded faults: fitted on normal rows, they give
`[normal, anomaly]`, the second column a score in [0, 1] rising with strangeness."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from pydantic import Field
from scipy.special import expit
from sklearn.ensemble import IsolationForest

from edgestack.learning._onnx import keep_outputs
from edgestack.learning.trainer import TRAINERS
from edgestack.learning.zoo._rows import as_rows
from edgestack.learning.zoo.nets import NetTrainer
from edgestack.learning.zoo.tabular import STANDARDISE, Preprocess, SklearnTrainer

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["Autoencoder", "Calibration", "IsolationForestTrainer"]

Positive = Annotated[int, Field(ge=1)]

_THRESHOLD_PERCENTILE = 99.0  # of the training rows' raw scores; maps to 0.5
_MEDIAN_LOGIT = -3.0  # where the training rows' median raw score lands: sigmoid(-3) ~ 0.05


@dataclass(frozen=True)
class Calibration:
    """Raw anomaly scores (larger: stranger) to `sigmoid((raw - threshold) / scale)`.

    Fitted on the training rows: their 99th percentile maps to 0.5 and their median to about
    0.05, so a rule's threshold of 0.5 means "stranger than 99 in 100 normal rows"."""

    threshold: float
    scale: float

    @classmethod
    def fit(cls, raw: np.ndarray) -> "Calibration":
        threshold = float(np.percentile(raw, _THRESHOLD_PERCENTILE))
        spread = (threshold - float(np.median(raw))) / -_MEDIAN_LOGIT
        # Identical training scores leave no spread; any small positive scale keeps the order.
        return cls(threshold, max(spread, 1e-6 * max(1.0, abs(threshold))))

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """`[normal, anomaly]` float32 `(n, 2)` for raw scores `(n,)` or `(n, 1)`."""
        anomaly = expit((np.asarray(raw, np.float64).reshape(-1, 1) - self.threshold) / self.scale)
        return np.hstack([1.0 - anomaly, anomaly]).astype(np.float32)

    def append(self, model: onnx.ModelProto, raw: str) -> onnx.ModelProto:
        """`model` with `apply` on its output `raw` `[batch, 1]` as the only output,
        `probabilities` `[batch, 2]`."""
        graph = model.graph
        constants = {
            "calibration.threshold": self.threshold,
            "calibration.scale": self.scale,
            "calibration.one": 1.0,
        }
        graph.initializer.extend(
            numpy_helper.from_array(np.array(value, np.float32), name)
            for name, value in constants.items()
        )
        graph.node.extend(
            [
                helper.make_node("Sub", [raw, "calibration.threshold"], ["calibration.shifted"]),
                helper.make_node("Div", ["calibration.shifted", "calibration.scale"], ["logit"]),
                helper.make_node("Sigmoid", ["logit"], ["anomaly"]),
                helper.make_node("Sub", ["calibration.one", "anomaly"], ["normal"]),
                helper.make_node("Concat", ["normal", "anomaly"], ["probabilities"], axis=1),
            ]
        )
        graph.output.append(
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2])
        )
        return keep_outputs(model, ["probabilities"])


@TRAINERS.register("isolation_forest")
class IsolationForestTrainer(SklearnTrainer):
    """An isolation forest behind row transforms; its raw score is the negated
    `decision_function`."""

    task: Literal["classify", "anomaly"] = "anomaly"

    def __init__(
        self,
        n_estimators: Positive = 100,
        max_samples: Annotated[int, Field(ge=2)] | Literal["auto"] = "auto",
        preprocess: Preprocess = STANDARDISE,
    ) -> None:
        super().__init__(preprocess)
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.calibration: Calibration | None = None

    def estimator(self, seed: int) -> IsolationForest:
        return IsolationForest(
            n_estimators=self.n_estimators, max_samples=self.max_samples, random_state=seed
        )

    def fit(self, x: np.ndarray, y: np.ndarray, *, seed: int) -> None:
        super().fit(x, y, seed=seed)
        self.calibration = Calibration.fit(self._raw(x, "fit"))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        raw = self._raw(x, "predict_proba")
        assert self.calibration is not None, "fitted with the pipeline"
        return self.calibration.apply(raw)

    def to_onnx(self) -> bytes:
        model = self.export()
        assert self.calibration is not None, "fitted with the pipeline"
        # skl2onnx's `scores` are the decision function, lower for stranger rows.
        model.graph.node.append(helper.make_node("Neg", ["scores"], ["strangeness"]))
        return self.calibration.append(model, "strangeness").SerializeToString()

    def _raw(self, x: np.ndarray, action: str) -> np.ndarray:
        decision = self._fitted(action).decision_function(as_rows(x))
        return -np.asarray(decision, dtype=np.float64)


@TRAINERS.register("autoencoder")
class Autoencoder(NetTrainer):
    """A dense autoencoder over standardised rows; its raw score is the mean squared
    reconstruction error, and `module` gives that score `(n, 1)`."""

    task: Literal["classify", "anomaly"] = "anomaly"

    def __init__(
        self,
        hidden: Positive = 16,
        bottleneck: Positive = 4,
        epochs: Positive = 60,
        batch_size: Positive = 32,
        learning_rate: Annotated[float, Field(gt=0, le=1)] = 3e-3,
    ) -> None:
        super().__init__(epochs, batch_size, learning_rate)
        self.hidden = hidden
        self.bottleneck = bottleneck
        self.calibration: Calibration | None = None

    def build(self, x: np.ndarray, classes: int) -> "nn.Module":
        from edgestack.learning.zoo import _torch

        return _torch.autoencoder(x, self.hidden, self.bottleneck)

    def loss(self, output: "torch.Tensor", target: "torch.Tensor") -> "torch.Tensor":
        return output.mean()

    def fine_tune(
        self,
        x: np.ndarray,
        target: np.ndarray | None = None,
        *,
        seed: int,
        epochs: int | None = None,
        learning_rate: float | None = None,
    ) -> None:
        """Train further to reconstruct rows `x` (`target` is not used), then refit the
        calibration on them, since the scores moved."""
        rows = as_rows(x)
        idle = np.zeros(len(rows), dtype=np.int64)
        super().fine_tune(rows, idle, seed=seed, epochs=epochs, learning_rate=learning_rate)
        self.calibration = Calibration.fit(self._raw(rows))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        raw = self._raw(as_rows(x))
        assert self.calibration is not None, "fitted with the module"
        return self.calibration.apply(raw)

    def to_onnx(self) -> bytes:
        from edgestack.learning.zoo import _torch

        module = self._fitted("to_onnx")
        assert self.calibration is not None, "fitted with the module"
        model = _torch.export(module, self.n_features, "strangeness")
        return self.calibration.append(model, "strangeness").SerializeToString()

    def _raw(self, x: np.ndarray) -> np.ndarray:
        from edgestack.learning.zoo import _torch

        return _torch.forward(self._fitted("predict_proba"), x)
