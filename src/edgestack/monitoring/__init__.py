"""Watching models on the device: latency and prediction summaries, input drift against the
training rows' reference statistics, streaming change detectors, an anomaly score on the
sensor streams, and accuracy estimated from calibrated confidences. A library: no network, no
database; the agent and the hub both use it.

Every built-in detector is registered in `DETECTORS` when this package is imported.
"""

from edgestack.monitoring.anomaly import EnergyScore, mean_square
from edgestack.monitoring.calibration import calibration, expected_correct
from edgestack.monitoring.detector import DETECTORS, Adwin, Detector, PageHinkley
from edgestack.monitoring.drift import BINS, DriftSketch, ks, psi, reference
from edgestack.monitoring.interval import CONFIDENCE_BINS, Interval, LatencyHistogram, Summary

__all__ = [
    "BINS",
    "CONFIDENCE_BINS",
    "DETECTORS",
    "Adwin",
    "Detector",
    "DriftSketch",
    "EnergyScore",
    "Interval",
    "LatencyHistogram",
    "PageHinkley",
    "Summary",
    "calibration",
    "expected_correct",
    "ks",
    "mean_square",
    "psi",
    "reference",
]
