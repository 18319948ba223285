"""From raw chunks to model input: windowing and feature extraction."""

from edgestack.processing.features import extract, feature_names
from edgestack.processing.pipeline import FeaturePipeline, vibration_spec
from edgestack.processing.window import Windower

__all__ = ["FeaturePipeline", "Windower", "extract", "feature_names", "vibration_spec"]
