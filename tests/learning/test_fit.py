import importlib
import json

import numpy as np
import onnx
import pytest

from edgestack.learning import ANOMALY_LABELS, Candidate, OnnxPredictor, auto, fit
from edgestack.predictor import LABELS_KEY
from edgestack.sensing import FAULTS

from .motor import motor_features
from .shapes import CHANNELS, SIZE, placed_shapes

# The module, which the package's `fit` function shadows.
fit_module = importlib.import_module("edgestack.learning.fit")


@pytest.fixture(scope="module")
def motor() -> tuple[np.ndarray, list[str]]:
    x, faults = motor_features(seconds=4.0)
    return x, [FAULTS[k] for k in faults]


def test_a_fit_holds_rows_out_cross_validates_and_records_its_lineage(
    motor: tuple[np.ndarray, list[str]],
) -> None:
    x, labels = motor
    steps: list[tuple[int, int]] = []

    result = fit(
        "decision_tree",
        x,
        labels,
        params={"max_depth": 5},
        seed=3,
        cv=3,
        dataset="motors",
        dataset_version=2,
        progress=lambda _, d, t: steps.append((d, t)),
    )

    metrics = result.metrics()
    assert result.labels == sorted(FAULTS)
    assert result.split == "stratified"
    assert len(result.cv_macro_f1) == 3 and metrics["cv_macro_f1_mean"] >= 0.8
    assert metrics["accuracy"] >= 0.9 and metrics["onnx_agreement"] == 1.0
    assert len(result.train.y) + len(result.test.y) == len(x)
    assert result.lineage.trainer == "decision_tree"
    assert result.lineage.params["max_depth"] == 5
    assert (result.lineage.dataset, result.lineage.dataset_version, result.lineage.seed) == (
        "motors",
        2,
        3,
    )
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    recorded = {p.key: p.value for p in onnx.load_from_string(result.onnx).metadata_props}
    assert LABELS_KEY in recorded


def test_a_given_split_is_kept_when_every_label_is_on_both_sides(
    motor: tuple[np.ndarray, list[str]],
) -> None:
    x, labels = motor
    test = np.arange(len(x)) % 5 == 0

    result = fit("logistic_regression", x, labels, test=test)

    assert result.split == "given"
    assert np.array_equal(result.test.x, x[test])


def test_an_anomaly_detector_fits_on_normal_rows_and_scores_faults(
    motor: tuple[np.ndarray, list[str]],
) -> None:
    x, labels = motor

    result = fit("isolation_forest", x, labels, params={"n_estimators": 20})

    assert result.labels == ANOMALY_LABELS
    assert (result.train.y == 0).sum() < len(result.train.y)  # faults held in train, unused
    assert result.metrics()["roc_auc"] >= 0.95


def test_an_anomaly_detector_calls_normal_what_the_app_calls_normal(
    motor: tuple[np.ndarray, list[str]],
) -> None:
    x, labels = motor
    calm = ["calm" if label == "normal" else label for label in labels]

    result = fit("isolation_forest", x, calm, params={"n_estimators": 20}, normal_label="calm")
    recorded = {p.key: p.value for p in onnx.load_from_string(result.onnx).metadata_props}

    assert result.labels == ["calm", "anomaly"]
    assert json.loads(recorded[LABELS_KEY]) == ["calm", "anomaly"]
    assert result.metrics()["roc_auc"] >= 0.95


def test_a_detector_refuses_anomaly_as_the_normal_label(
    motor: tuple[np.ndarray, list[str]],
) -> None:
    x, labels = motor

    with pytest.raises(ValueError, match="normal_label: 'anomaly'"):
        fit("isolation_forest", x, labels, normal_label="anomaly")


def test_auto_keeps_the_best_candidate_by_validation_macro_f1(
    motor: tuple[np.ndarray, list[str]],
) -> None:
    x, labels = motor

    found = auto(x, labels, candidates=["decision_tree", "logistic_regression"], budget_s=60)

    scores = [c.macro_f1 for c in found.leaderboard]
    assert {c.trainer for c in found.leaderboard} == {"decision_tree", "logistic_regression"}
    assert scores == sorted(scores, reverse=True)
    assert found.best.lineage.trainer == found.leaderboard[0].trainer
    predicted, _ = OnnxPredictor(found.best.onnx, found.best.labels).predict(found.best.test.x)
    assert np.mean(predicted == found.best.test.y) >= 0.9


def test_auto_stops_starting_candidates_when_the_budget_is_spent(
    motor: tuple[np.ndarray, list[str]],
) -> None:
    x, labels = motor

    found = auto(x, labels, candidates=["decision_tree", "mlp"], budget_s=0)

    skipped = [c for c in found.leaderboard if c.macro_f1 is None]
    assert [c.trainer for c in skipped] == ["mlp"]
    assert "budget ran out" in (skipped[0].error or "")


def test_too_few_rows_for_the_folds_are_refused_naming_the_label(
    motor: tuple[np.ndarray, list[str]],
) -> None:
    x, labels = motor

    with pytest.raises(ValueError, match=r"cv: 500 folds need 500 training rows of each label"):
        fit("decision_tree", x, labels, cv=500)


def test_auto_with_raw_windows_also_tries_the_nets_and_keeps_a_raw_winner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fit_module, "_EXTRA_ROUNDS", 0)  # one round: the nets cost seconds
    raw, classes = placed_shapes(100, seed=3)
    # Feature rows that carry nothing: only the raw windows tell the classes apart.
    noise = np.random.default_rng(0).standard_normal((len(raw), 6)).astype(np.float32)
    labels = [["sine", "square"][c] for c in classes]
    test = np.arange(len(raw)) >= 70

    found = auto(
        noise,
        labels,
        raw=raw,
        shape=(CHANNELS, SIZE),
        test=test,
        candidates=["logistic_regression"],
        budget_s=600,
    )

    tried = {c.trainer: c for c in found.leaderboard}
    assert set(tried) == {"logistic_regression", "minirocket", "cnn1d"}
    assert tried["minirocket"].input == tried["cnn1d"].input == "raw"
    assert tried["logistic_regression"].input == "features"
    best = found.best
    assert best.input == "raw" and best.lineage.trainer in ("minirocket", "cnn1d")
    assert best.lineage.params["shape"] == [CHANNELS, SIZE]
    assert np.array_equal(best.test.x, raw[test])
    assert best.evaluation.accuracy >= 0.85
    assert found.leaderboard[-1].trainer == "logistic_regression"


def test_auto_ranks_small_data_by_folds_over_all_training_rows_and_large_by_one_split(
    motor: tuple[np.ndarray, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    x, labels = motor

    small = auto(x, labels, candidates=["logistic_regression"], budget_s=0)
    monkeypatch.setattr(fit_module, "SMALL_DATA_ROWS", len(x) // 2)
    large = auto(x, labels, candidates=["logistic_regression"], budget_s=0)

    assert len(small.leaderboard[0].scores) == 5
    assert small.best.cv_macro_f1 == list(small.leaderboard[0].scores)
    assert len(large.leaderboard[0].scores) == 1
    assert large.best.cv_macro_f1 == []


def test_auto_spends_time_left_scoring_the_leaders_again_on_fresh_folds(
    motor: tuple[np.ndarray, list[str]],
) -> None:
    x, labels = motor

    found = auto(x, labels, candidates=["decision_tree", "logistic_regression"], budget_s=60)

    for candidate in found.leaderboard:
        assert len(candidate.scores) == 15  # three rounds of five folds
        assert candidate.macro_f1 == pytest.approx(np.mean(candidate.scores))


def test_raw_rows_that_do_not_match_the_features_are_refused_naming_the_field(
    motor: tuple[np.ndarray, list[str]],
) -> None:
    x, labels = motor
    raw = np.zeros((len(x), 30), dtype=np.float32)

    with pytest.raises(ValueError, match=r"raw: shape \(5, 30\) for \d+ feature rows"):
        auto(x, labels, raw=raw[:5])
    with pytest.raises(ValueError, match=r"shape: \(3, 12\) folds 36 columns but the rows have 30"):
        auto(x, labels, raw=raw, shape=(3, 12))


def test_a_raw_window_candidate_within_the_folds_noise_of_a_feature_leader_wins() -> None:
    raw = Candidate("minirocket", 0.78, 1.0, input="raw", scores=(0.8, 0.8, 0.7, 0.9, 0.7))
    close = Candidate("svm", 0.8, 1.0, scores=(0.9, 0.7, 0.8, 0.9, 0.7))
    clear = Candidate("svm", 0.95, 1.0, scores=(0.95, 0.96, 0.94, 0.95, 0.95))

    assert fit_module._preferred([close, raw], 5) is raw
    assert fit_module._preferred([clear, raw], 5) is clear
    assert fit_module._preferred([raw, close], 5) is raw
