"""Accuracy estimated from calibrated confidences (CBPE) against the accuracy labels give."""

import numpy as np
import pytest

from edgestack.bundle import Calibration
from edgestack.monitoring import CONFIDENCE_BINS, Interval, calibration, expected_correct


def predictions(
    rng: np.random.Generator, n: int, *, right_given: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Two-class probabilities with a top class of probability uniform in [0.5, 1], and truth
    that agrees with it with that probability less `right_given`: calibrated at 0, over-
    confident above."""
    top = rng.uniform(0.5, 1.0, n)
    chosen = rng.integers(0, 2, n)
    probabilities = np.where(chosen[:, None] == np.arange(2), top[:, None], 1 - top[:, None])
    right = rng.uniform(size=n) < top - right_given
    return probabilities, np.where(right, chosen, 1 - chosen)


def live_estimate(calibrated: Calibration, probabilities: np.ndarray) -> float:
    """What the hub estimates from the confidence histogram a device's interval reports."""
    interval = Interval(labels=["a", "b"])
    interval.add(0.001, probabilities)
    confidence = interval.take().confidence
    return expected_correct(calibrated, confidence) / sum(confidence)


@pytest.mark.parametrize("overconfidence", [0.0, 0.25])
def test_the_estimate_matches_the_accuracy_labels_give_on_new_rows(overconfidence: float) -> None:
    rng = np.random.default_rng(0)
    held_out = predictions(rng, 20_000, right_given=overconfidence)
    live, truth = predictions(rng, 20_000, right_given=overconfidence)

    estimate = live_estimate(calibration(*held_out), live)

    accuracy = float(np.mean(live.argmax(axis=1) == truth))
    assert estimate == pytest.approx(accuracy, abs=0.01)
    # the mean confidence alone would miss an overconfident model's accuracy by about as much
    assert float(live.max(axis=1).mean()) - accuracy == pytest.approx(overconfidence, abs=0.02)


def test_a_bin_no_held_out_row_fell_in_holds_its_centre() -> None:
    probabilities = np.array([[0.95, 0.05], [0.05, 0.95], [0.92, 0.08], [0.45, 0.55]])
    truth = np.array([0, 0, 0, 1])

    calibrated = calibration(probabilities, truth)

    assert calibrated.rows == [0, 0, 0, 0, 0, 1, 0, 0, 0, 3]
    assert calibrated.accuracy[9] == pytest.approx(2 / 3)
    assert calibrated.accuracy[5] == 1.0
    assert calibrated.accuracy[0] == pytest.approx(0.05)
    assert calibrated.accuracy[7] == pytest.approx(0.75)
    assert len(calibrated.accuracy) == CONFIDENCE_BINS


def test_nan_probabilities_count_in_the_lowest_bin_as_live() -> None:
    probabilities = np.array([[np.nan, np.nan], [0.9, 0.1]])

    calibrated = calibration(probabilities, np.array([0, 0]))

    assert calibrated.rows[0] == 1 and sum(calibrated.rows) == 2


def test_counts_in_other_bins_than_the_calibration_are_refused() -> None:
    calibrated = Calibration(accuracy=[0.5, 1.0], rows=[1, 1])

    with pytest.raises(ValueError, match="confidence has 3 bins, the calibration 2"):
        expected_correct(calibrated, [1, 2, 3])


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="one class index per row"):
        calibration(np.zeros((3, 2)), np.zeros(2))
