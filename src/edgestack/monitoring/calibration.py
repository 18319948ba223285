"""Accuracy without labels, from confidences: how often a model was right on its held-out rows
per bin of its top-class probability (`calibration`, stored in the manifest by training), and
how many windows of a live confidence histogram that makes right (`expected_correct`). NannyML
calls this confidence-based performance estimation (CBPE).

    calibrated = calibration(probabilities, truth)         # held-out rows, at training
    right = expected_correct(calibrated, summary.confidence)
    estimated_accuracy = right / sum(summary.confidence)
"""

from collections.abc import Sequence

import numpy as np

from edgestack.bundle import Calibration
from edgestack.monitoring.interval import CONFIDENCE_BINS

__all__ = ["calibration", "expected_correct"]


def calibration(
    probabilities: np.ndarray, truth: np.ndarray, *, bins: int = CONFIDENCE_BINS
) -> Calibration:
    """The share of rows whose most likely class is `truth`, per bin of that class's
    probability, from `probabilities` `(n, labels)` and class indices `truth` `(n,)`. Binned
    as `Interval` bins live confidences: a NaN probability counts in the lowest bin.

    Raises `ValueError` for shapes that do not match or fewer than 2 bins."""
    if bins < 2:
        raise ValueError(f"bins: {bins}; give at least 2")
    if probabilities.ndim != 2 or np.shape(truth) != (len(probabilities),):
        raise ValueError(
            f"probabilities {probabilities.shape} and truth {np.shape(truth)}: give "
            "(rows, labels) and one class index per row"
        )
    top = np.nan_to_num(probabilities.max(axis=1, initial=-np.inf), nan=0.0)
    index = np.clip((top * bins).astype(np.int64), 0, bins - 1)
    right = probabilities.argmax(axis=1) == np.asarray(truth)
    rows = np.bincount(index, minlength=bins)
    hits = np.bincount(index, weights=right, minlength=bins)
    centres = (np.arange(bins) + 0.5) / bins
    accuracy = np.divide(hits, rows, out=centres.copy(), where=rows > 0)
    return Calibration(accuracy=accuracy.tolist(), rows=rows.tolist())


def expected_correct(calibrated: Calibration, confidence: Sequence[int]) -> float:
    """How many of the windows counted per confidence bin in `confidence` the calibration
    expects right; divide by their sum for the estimated accuracy.

    Raises `ValueError` when `confidence` has other bins than the calibration."""
    if len(confidence) != len(calibrated.accuracy):
        raise ValueError(
            f"confidence has {len(confidence)} bins, the calibration {len(calibrated.accuracy)}; "
            "count windows in the bins the model was calibrated in"
        )
    return float(np.dot(np.asarray(confidence, dtype=np.float64), calibrated.accuracy))
