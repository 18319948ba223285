"""Training classifiers on window features and running them through ONNX Runtime."""

from edgestack.learning.predictor import OnnxPredictor
from edgestack.learning.train import TrainedModel, train_classifier
from edgestack.learning.trainer import TRAINERS, Trainer

__all__ = ["TRAINERS", "OnnxPredictor", "TrainedModel", "Trainer", "train_classifier"]
