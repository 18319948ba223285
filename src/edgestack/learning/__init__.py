"""Training classifiers on window features and running them through ONNX Runtime."""

from edgestack.learning.predictor import OnnxPredictor
from edgestack.learning.train import TrainedModel, train_classifier

__all__ = ["OnnxPredictor", "TrainedModel", "train_classifier"]
