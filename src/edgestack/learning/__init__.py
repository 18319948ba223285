"""Training models on window features, evaluating them, and running them through ONNX Runtime.

Every built-in trainer of the model zoo (`edgestack.learning.zoo`) is registered in
`TRAINERS` when this package is imported.
"""

# The zoo's modules, imported for their registrations.
from edgestack.learning import zoo as zoo
from edgestack.learning.evaluate import ClassScores, Evaluation, confusion_png, evaluate
from edgestack.learning.fit import (
    ANOMALY_LABELS,
    AUTO_CANDIDATES,
    RAW_CANDIDATES,
    SMALL_DATA_ROWS,
    AutoResult,
    Candidate,
    FitResult,
    Input,
    Progress,
    Rows,
    auto,
    fit,
)
from edgestack.learning.package import package, package_split
from edgestack.learning.train import TrainedModel, train_classifier
from edgestack.learning.trainer import TRAINERS, Trainer
from edgestack.learning.zoo import NetTrainer, SklearnTrainer
from edgestack.predictor import OnnxPredictor

__all__ = [
    "ANOMALY_LABELS",
    "AUTO_CANDIDATES",
    "RAW_CANDIDATES",
    "SMALL_DATA_ROWS",
    "TRAINERS",
    "AutoResult",
    "Candidate",
    "ClassScores",
    "Evaluation",
    "FitResult",
    "Input",
    "NetTrainer",
    "OnnxPredictor",
    "Progress",
    "Rows",
    "SklearnTrainer",
    "TrainedModel",
    "Trainer",
    "auto",
    "confusion_png",
    "evaluate",
    "fit",
    "package",
    "package_split",
    "train_classifier",
]
