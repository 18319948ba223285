"""scikit-learn classifiers over feature rows, each behind the app's row transforms, exported
with skl2onnx as one graph: transforms, model and probabilities."""

import warnings
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import numpy as np
import onnx
from pydantic import Field
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from edgestack.bundle import StageSpec
from edgestack.learning._onnx import TARGET_OPSET, keep_outputs
from edgestack.learning.trainer import TRAINERS
from edgestack.learning.zoo._rows import checked, not_fitted
from edgestack.processing import TRANSFORMS

__all__ = [
    "DecisionTree",
    "GradientBoosting",
    "LogisticRegressionTrainer",
    "MlpTrainer",
    "RandomForest",
    "SklearnTrainer",
    "SvmTrainer",
    "row_transforms",
]

Positive = Annotated[int, Field(ge=1)]
Preprocess = Sequence[StageSpec]
STANDARDISE: Preprocess = (StageSpec(kind="standardise"),)


def row_transforms(preprocess: Preprocess) -> list[tuple[str, Any]]:
    """Pipeline steps of the registered row transforms; errors name `preprocess[i]`."""
    return [
        (f"{i}-{stage.kind}", TRANSFORMS.build(stage.kind, stage.params, where=f"preprocess[{i}]"))
        for i, stage in enumerate(preprocess)
    ]


class SklearnTrainer:
    """A scikit-learn estimator behind row transforms (`preprocess`, standardise by default).

    `pipeline` is the fitted scikit-learn `Pipeline`, for whoever wants to look inside."""

    task: Literal["classify", "anomaly"] = "classify"

    def __init__(self, preprocess: Preprocess) -> None:
        self.preprocess = list(preprocess)
        self.pipeline: Pipeline | None = None

    def estimator(self, seed: int) -> Any:
        """A fresh, unfitted estimator with this trainer's settings."""
        raise NotImplementedError

    def fit(self, x: np.ndarray, y: np.ndarray, *, seed: int) -> None:
        rows, classes, _ = checked(x, y, self.task)
        pipeline = Pipeline([*row_transforms(self.preprocess), ("model", self.estimator(seed))])
        with warnings.catch_warnings():
            # Iterations are a budget chosen here, not a promise of convergence; held-out
            # metrics judge the result.
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipeline.fit(rows, classes)
        self.pipeline = pipeline

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        probabilities = self._fitted("predict_proba").predict_proba(np.asarray(x, np.float32))
        return np.asarray(probabilities, dtype=np.float32)

    def to_onnx(self) -> bytes:
        return keep_outputs(self.export(), ["probabilities"]).SerializeToString()

    def export(self) -> onnx.ModelProto:
        """The fitted pipeline as skl2onnx converts it, input `features`, every output kept
        (a classifier's probabilities as a plain tensor, `probabilities`)."""
        pipeline = self._fitted("to_onnx")
        estimator = pipeline.steps[-1][1]
        return to_onnx(
            pipeline,
            initial_types=[("features", FloatTensorType([None, pipeline.n_features_in_]))],
            options={id(estimator): {"zipmap": False}} if self.task == "classify" else None,
            target_opset=TARGET_OPSET,
        )

    def _fitted(self, action: str) -> Pipeline:
        if self.pipeline is None:
            not_fitted(self, action)
        return self.pipeline


@TRAINERS.register("decision_tree")
class DecisionTree(SklearnTrainer):
    def __init__(
        self,
        max_depth: Positive | None = 12,
        min_samples_leaf: Positive = 2,
        preprocess: Preprocess = STANDARDISE,
    ) -> None:
        super().__init__(preprocess)
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf

    def estimator(self, seed: int) -> DecisionTreeClassifier:
        return DecisionTreeClassifier(
            max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf, random_state=seed
        )


@TRAINERS.register("random_forest")
class RandomForest(SklearnTrainer):
    # Capped leaves keep the ONNX file under ~2 MB however large or noisy the data; separable
    # fault windows need far fewer.
    def __init__(
        self,
        n_estimators: Positive = 100,
        max_leaf_nodes: Annotated[int, Field(ge=2)] = 128,
        min_samples_leaf: Positive = 2,
        preprocess: Preprocess = STANDARDISE,
    ) -> None:
        super().__init__(preprocess)
        self.n_estimators = n_estimators
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf

    def estimator(self, seed: int) -> RandomForestClassifier:
        return RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            random_state=seed,
            n_jobs=1,
        )


@TRAINERS.register("gradient_boosting")
class GradientBoosting(SklearnTrainer):
    def __init__(
        self,
        n_estimators: Positive = 100,
        max_depth: Positive = 3,
        learning_rate: Annotated[float, Field(gt=0, le=1)] = 0.1,
        preprocess: Preprocess = STANDARDISE,
    ) -> None:
        super().__init__(preprocess)
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate

    def estimator(self, seed: int) -> GradientBoostingClassifier:
        return GradientBoostingClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            random_state=seed,
        )


@TRAINERS.register("svm")
class SvmTrainer(SklearnTrainer):
    """An RBF support vector machine, its scores calibrated to probabilities by sigmoids
    (Platt scaling) fitted on cross-validation folds of the training rows."""

    def __init__(
        self,
        c: Annotated[float, Field(gt=0)] = 10.0,
        gamma: Literal["scale", "auto"] | Annotated[float, Field(gt=0)] = "scale",
        preprocess: Preprocess = STANDARDISE,
    ) -> None:
        super().__init__(preprocess)
        self.c = c
        self.gamma = gamma

    def estimator(self, seed: int) -> CalibratedClassifierCV:
        svm = SVC(C=self.c, gamma=self.gamma, random_state=seed)
        return CalibratedClassifierCV(svm, method="sigmoid", cv=3, ensemble=False)

    def export(self) -> onnx.ModelProto:
        with warnings.catch_warnings():
            # skl2onnx's SVC converter reads `probA_` and `probB_` (empty here: the calibration
            # makes the probabilities), which scikit-learn 1.9 deprecates on reading.
            warnings.filterwarnings(
                "ignore", r"Attribute `prob[AB]_` was deprecated", FutureWarning
            )
            return super().export()


@TRAINERS.register("logistic_regression")
class LogisticRegressionTrainer(SklearnTrainer):
    def __init__(
        self,
        c: Annotated[float, Field(gt=0)] = 1.0,
        max_iter: Positive = 1000,
        preprocess: Preprocess = STANDARDISE,
    ) -> None:
        super().__init__(preprocess)
        self.c = c
        self.max_iter = max_iter

    def estimator(self, seed: int) -> LogisticRegression:
        return LogisticRegression(C=self.c, max_iter=self.max_iter, random_state=seed)


@TRAINERS.register("mlp")
class MlpTrainer(SklearnTrainer):
    def __init__(
        self,
        hidden: Sequence[Positive] = (64, 32),
        alpha: Annotated[float, Field(ge=0)] = 1e-3,
        max_iter: Positive = 500,
        preprocess: Preprocess = STANDARDISE,
    ) -> None:
        super().__init__(preprocess)
        self.hidden = tuple(hidden)
        self.alpha = alpha
        self.max_iter = max_iter

    def estimator(self, seed: int) -> MLPClassifier:
        return MLPClassifier(
            hidden_layer_sizes=self.hidden,
            alpha=self.alpha,
            max_iter=self.max_iter,
            random_state=seed,
        )
