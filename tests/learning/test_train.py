import numpy as np
import onnx
import pytest

from edgestack.bundle import StageSpec
from edgestack.learning import OnnxPredictor, TrainedModel, train_classifier
from edgestack.processing import FeaturePipeline, vibration_spec
from edgestack.sensing import FAULTS, MotorSimulator

MACHINES = (1, 2, 3)
RATE = round(vibration_spec().rate_hz)
CHUNK = RATE // 10  # a tenth of a second, as an agent reads
TRAIN_S = 8.0
LATER_S = 60.0
ALARM_P = 0.7
ALARM_RUN = 4


def _windows(motor: MotorSimulator, seconds: float) -> np.ndarray:
    """Feature rows of `seconds` of the motor, windows starting afresh."""
    pipeline = FeaturePipeline(vibration_spec())
    reads = round(seconds * RATE / CHUNK)
    return np.concatenate([pipeline.push(motor.read(CHUNK)) for _ in range(reads)])


def _recorded(seed: int) -> tuple[MotorSimulator, np.ndarray, list[str]]:
    """A machine run through every fault in turn, as collected for training."""
    motor = MotorSimulator(seed, start=0.0)
    rows, labels = [], []
    for fault in FAULTS:
        motor.inject(fault)
        features = _windows(motor, TRAIN_S)
        rows.append(features)
        labels += [fault] * len(features)
    return motor, np.concatenate(rows), labels


def _later(seed: int) -> MotorSimulator:
    """The same machine, healthy again, a minute of new regimes after its training data."""
    motor = MotorSimulator(seed, start=0.0)
    for fault in FAULTS:
        motor.inject(fault)
        motor.read(round(TRAIN_S * RATE))  # chunking does not matter: the samples are the same
    motor.inject("normal")
    motor.read(round(LATER_S * RATE))
    return motor


def _first_alarm(trained: TrainedModel, features: np.ndarray) -> tuple[int, str] | None:
    """Window index and label of the first run of confident non-normal predictions, if any."""
    indices, probabilities = OnnxPredictor(trained.onnx, trained.labels).predict(features)
    confidences = probabilities[np.arange(len(indices)), indices]
    run = 0
    for i, (label, p) in enumerate(zip(indices, confidences, strict=True)):
        hot = trained.labels[label] != "normal" and p >= ALARM_P
        run = run + 1 if hot else 0
        if run == ALARM_RUN:
            return i, trained.labels[label]
    return None


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    recordings = [_recorded(seed) for seed in MACHINES]
    features = np.concatenate([rows for _, rows, _ in recordings])
    labels = [label for _, _, machine_labels in recordings for label in machine_labels]
    return train_classifier(features, labels, seed=0)


def test_the_model_classifies_held_out_windows(trained: TrainedModel) -> None:
    metrics = trained.metrics

    assert trained.labels == sorted(FAULTS)
    assert metrics["accuracy"] >= 0.95
    assert metrics["macro_f1"] >= 0.95
    assert metrics["onnx_agreement"] >= 0.999
    assert metrics["n_test"] / (metrics["n_train"] + metrics["n_test"]) == pytest.approx(
        0.25, abs=0.01
    )


def test_the_onnx_model_takes_features_and_gives_plain_probabilities(
    trained: TrainedModel,
) -> None:
    graph = onnx.load_from_string(trained.onnx).graph
    width = len(vibration_spec().features)
    rows = np.random.default_rng(0).standard_normal((5, width)).astype(np.float32)

    indices, probabilities = OnnxPredictor(trained.onnx, trained.labels).predict(rows)

    assert len(trained.onnx) < 3_000_000
    assert [i.name for i in graph.input] == ["features"]
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [0, width]
    assert "ZipMap" not in {node.op_type for node in graph.node}
    assert "Scaler" in {node.op_type for node in graph.node}
    assert indices.dtype == np.int64 and indices.shape == (5,)
    assert probabilities.dtype == np.float32 and probabilities.shape == (5, 3)
    assert probabilities.sum(axis=1) == pytest.approx(np.ones(5), abs=1e-5)
    assert np.array_equal(indices, probabilities.argmax(axis=1))


@pytest.mark.parametrize("seed", MACHINES)
def test_healthy_machines_raise_no_alarm_in_new_regimes(trained: TrainedModel, seed: int) -> None:
    motor = _later(seed)

    features = _windows(motor, 30.0)

    spec = vibration_spec()
    assert len(features) == (30 * RATE - spec.window) // spec.hop + 1
    assert _first_alarm(trained, features) is None


@pytest.mark.parametrize("fault", ["bearing_wear", "imbalance"])
@pytest.mark.parametrize("seed", MACHINES)
def test_a_fault_in_new_regimes_is_flagged_within_20_windows(
    trained: TrainedModel, seed: int, fault: str
) -> None:
    motor = _later(seed)
    motor.inject(fault)

    features = _windows(motor, 3.0)[:20]

    alarm = _first_alarm(trained, features)
    assert alarm is not None
    assert alarm[1] == fault


def test_the_predictor_refuses_a_wrong_feature_count(trained: TrainedModel) -> None:
    predictor = OnnxPredictor(trained.onnx, trained.labels)

    with pytest.raises(ValueError, match="columns"):
        predictor.predict(np.zeros((2, 7), dtype=np.float32))


def test_the_predictor_refuses_labels_the_model_was_not_trained_with(
    trained: TrainedModel,
) -> None:
    with pytest.raises(ValueError, match="labels"):
        OnnxPredictor(trained.onnx, list(reversed(trained.labels)))


def test_an_empty_batch_gives_empty_results(trained: TrainedModel) -> None:
    predictor = OnnxPredictor(trained.onnx, trained.labels)

    indices, probabilities = predictor.predict(np.zeros((0, len(vibration_spec().features))))

    assert indices.shape == (0,) and probabilities.shape == (0, 3)


def _toy(per_label: int = 20) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(0)
    features = rng.standard_normal((2 * per_label, 4)).astype(np.float32)
    features[per_label:] += 5
    return features, ["a"] * per_label + ["b"] * per_label


def test_a_single_label_is_refused() -> None:
    features, _ = _toy()

    with pytest.raises(ValueError, match="at least 2 distinct labels"):
        train_classifier(features, ["a"] * len(features))


def test_too_few_rows_of_a_label_are_refused_naming_it() -> None:
    features, labels = _toy()
    labels[:17] = ["c"] * 17  # leaves three rows of "a"

    with pytest.raises(ValueError, match=r"'a' has 3 rows; at least 8"):
        train_classifier(features, labels)


def test_labels_must_match_rows() -> None:
    features, labels = _toy()

    with pytest.raises(ValueError, match="one label per row"):
        train_classifier(features, labels[:-1])


def test_non_finite_features_are_refused() -> None:
    features, labels = _toy()
    features[3, 1] = np.nan

    with pytest.raises(ValueError, match="row 3"):
        train_classifier(features, labels)


def test_the_apps_row_transforms_are_fitted_and_exported_inside_the_onnx_graph() -> None:
    features, labels = _toy(per_label=40)
    preprocess = [StageSpec(kind="normalise"), StageSpec(kind="pca", params={"n_components": 2})]

    trained = train_classifier(features, labels, preprocess=preprocess)

    graph = onnx.load_from_string(trained.onnx).graph
    forest = next(node for node in graph.node if node.op_type == "TreeEnsembleClassifier")
    splits_on = next(a for a in forest.attribute if a.name == "nodes_featureids").ints
    assert graph.input[0].type.tensor_type.shape.dim[1].dim_value == 4  # raw features in
    assert set(splits_on) <= {0, 1}  # the trees see the two PCA components, inside the graph
    assert trained.metrics["onnx_agreement"] == 1.0
    assert trained.metrics["accuracy"] >= 0.95


def test_an_unknown_row_transform_is_refused_naming_it() -> None:
    features, labels = _toy()

    with pytest.raises(ValueError, match=r"preprocess\[1\].*unknown row transform 'whiten'"):
        train_classifier(
            features, labels, preprocess=[StageSpec(kind="standardise"), StageSpec(kind="whiten")]
        )
