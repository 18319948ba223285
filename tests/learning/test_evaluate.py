import io

import matplotlib.image
import numpy as np
import pytest

from edgestack.learning import confusion_png, evaluate


def test_metrics_count_per_class_and_flatten_for_a_manifest() -> None:
    truth = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 1, 2])

    scores = evaluate(truth, predicted, ["ok", "worn", "loose"])

    assert scores.accuracy == pytest.approx(5 / 6)
    assert scores.confusion == [[2, 1, 0], [0, 2, 0], [0, 0, 1]]
    assert scores.per_class["ok"].recall == pytest.approx(2 / 3)
    assert scores.per_class["worn"].precision == pytest.approx(2 / 3)
    assert scores.per_class["loose"].support == 1
    assert scores.macro_f1 == pytest.approx(np.mean([0.8, 0.8, 1.0]))
    assert scores.roc_auc is None
    assert scores.metrics()["f1.loose"] == 1.0


def test_anomaly_scores_give_a_roc_auc_of_class_0_against_the_rest() -> None:
    truth = np.array([0, 0, 0, 1, 1])

    scores = evaluate(
        truth,
        np.zeros(5, int),
        ["normal", "anomaly"],
        anomaly_scores=np.array([0.1, 0.2, 0.6, 0.5, 0.9]),
    )

    assert scores.roc_auc == pytest.approx(5 / 6)
    assert scores.metrics()["roc_auc"] == scores.roc_auc


def test_mismatched_predictions_are_refused() -> None:
    with pytest.raises(ValueError, match="one prediction per held-out row"):
        evaluate(np.array([0, 1]), np.array([0]), ["a", "b"])


def test_the_confusion_matrix_is_a_png_matplotlib_reads_back() -> None:
    scores = evaluate(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), ["a", "b", "c"])

    png = confusion_png(scores, "test")

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
    height, width, _ = pixels.shape
    side = 1.6 + 0.55 * 3  # the figure grows with the labels, 100 dots per inch
    assert (height, width) == (round(side * 100), round((side + 1.2) * 100))
    assert pixels.std() > 0  # something is drawn
