import json
from unittest.mock import create_autospec

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict
from flwr.common import bytes_to_ndarray
from flwr.common.secure_aggregation.quantization import dequantize
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key
from flwr.serverapp import Grid
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedProx
from pydantic import ValidationError
from scipy.special import softmax

from edgestack.federated import (
    RESULT_PATH,
    FederatedConfig,
    FederatedResult,
    _net,
    client_app,
    federate,
    make_strategy,
    save_local_windows,
)
from edgestack.predictor import LABELS_KEY
from edgestack.processing import vibration_spec

from .factories import CLASSES, NAMES, WIDTH, LocalGrid, Regimes, delivered


def test_noise_without_a_clipping_norm_is_refused_naming_dp_clip() -> None:
    with pytest.raises(ValidationError, match="dp_clip"):
        FederatedConfig(width=WIDTH, classes=CLASSES, dp_noise=1.0)


def test_dp_settings_wrap_the_chosen_strategy_in_flowers_central_dp() -> None:
    config = FederatedConfig(
        width=WIDTH, classes=CLASSES, strategy="fedprox", dp_clip=2.0, dp_noise=0.5, min_clients=3
    )

    strategy = make_strategy(config)

    assert isinstance(strategy, DifferentialPrivacyServerSideFixedClipping)
    assert isinstance(strategy.strategy, FedProx)
    assert (strategy.clipping_norm, strategy.noise_multiplier) == (2.0, 0.5)
    assert strategy.num_sampled_clients == 3


@pytest.mark.parametrize("classes", [None, ["b", "a", "c"]])
def test_a_config_survives_flowers_run_config(classes: list[str] | None) -> None:
    config = FederatedConfig(width=WIDTH, classes=classes, rounds=4, dp_clip=1.5)

    back = FederatedConfig.from_run_config({**config.to_run_config(), RESULT_PATH: "r.npz"})

    assert back == config


def test_a_class_count_stands_for_index_names_and_a_repeated_name_is_refused() -> None:
    assert FederatedConfig(classes=3).classes == ["0", "1", "2"]
    with pytest.raises(ValidationError, match="classes"):
        FederatedConfig(classes=["a", "b", "a"])


@pytest.mark.usefixtures("aggregator")
def test_devices_of_other_label_sets_train_one_model_of_their_union_and_another_spec_sits_out(
    tmp_path,
) -> None:
    spec = vibration_spec()
    regimes = Regimes(seed=5)
    files = []
    # Device 0 never saw "normal", device 1 never saw "bearing": the run learns all three.
    for i, held in enumerate([[0, 1], [1, 2]]):
        x, y = regimes.draw(90, np.isin(np.arange(CLASSES), held) / len(held))
        files.append(save_local_windows(tmp_path / f"d{i}.npz", x, NAMES[y], spec))
    x, y = regimes.device(2, 90)
    files.append(save_local_windows(tmp_path / "other.npz", x, NAMES[y], vibration_spec(1000.0)))
    grid = LocalGrid(files, client_app)
    config = FederatedConfig(rounds=3, min_clients=2, hidden=16)
    progress = tmp_path / "progress.jsonl"

    result = federate(grid, config, progress)

    assert result.labels == list(NAMES) and result.spec == spec
    assert result.state["1.weight"].shape == (16, WIDTH)
    assert [r.participants for r in result.history] == [2, 2, 2]
    assert not any(m.metadata.message_type == "train" for m in grid.received[3])
    x_test, y_test = regimes.balanced(300)
    assert (result.predict(x_test) == y_test).mean() > 0.8
    lines = [json.loads(line) for line in progress.read_text().splitlines()]
    assert lines == [vars(r) for r in result.history]
    back = FederatedResult.load(result.save(tmp_path / "result.npz"))
    assert (back.labels, back.spec, back.history) == (result.labels, spec, result.history)


@pytest.mark.usefixtures("aggregator")
def test_three_non_iid_devices_reach_a_model_near_one_trained_on_their_rows_pooled(
    tmp_path,
) -> None:
    regimes = Regimes(seed=3)
    files = regimes.files(tmp_path, devices=3, rows=120)
    config = FederatedConfig(rounds=2, min_clients=3)
    x_test, y_test = regimes.balanced(600)
    pooled = [np.load(f) for f in files]
    rows = np.concatenate([p["x"] for p in pooled]).astype(np.float32)
    scaling = (rows.mean(axis=0), rows.std(axis=0))
    central = _net.train(
        _net.build(WIDTH, CLASSES, config.hidden, seed=0, scaling=scaling),
        rows,
        np.searchsorted(NAMES, np.concatenate([p["labels"] for p in pooled])),
        epochs=config.rounds * config.local_epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        proximal_mu=0.0,
        seed=0,
    )

    result = federate(LocalGrid(files, client_app), config)

    _, central_accuracy = _net.evaluate(central, x_test, y_test)
    assert (result.predict(x_test) == y_test).mean() >= central_accuracy - 0.03
    assert [r.participants for r in result.history] == [3, 3]
    # Rows scaled alike on every device, by their pooled scale, from column sums.
    assert np.allclose(result.state["0.mean"], scaling[0], atol=1e-4)
    assert np.allclose(result.state["0.std"], scaling[1], rtol=1e-3)
    # Round 2 started from round 1's aggregate, which fits the devices' windows.
    assert result.history[1].accuracy is not None and result.history[1].accuracy > 0.8


def _reply(update: _net.State, node: int, examples: int) -> Message:
    metrics = MetricRecord({"num-examples": examples, "loss": 1.0, "accuracy": 0.5})
    content = RecordDict({"arrays": _net.to_record(update), "metrics": metrics})
    return delivered(content, src=node, dst=0, reply_to=f"to-{node}")


@pytest.mark.usefixtures("aggregator")
@pytest.mark.parametrize("clip", [None, 2.0])
def test_dp_clipping_bounds_how_far_a_round_moves_the_model(clip: float | None) -> None:
    config = FederatedConfig(width=WIDTH, classes=CLASSES, hidden=8, dp_clip=clip)
    strategy = make_strategy(config)
    sent = _net.build(WIDTH, CLASSES, hidden=8, seed=0)
    grid = create_autospec(Grid, instance=True)
    grid.get_node_ids.return_value = [1, 2]
    list(strategy.configure_train(1, _net.to_record(sent), ConfigRecord(), grid))
    # Two devices whose updates move every weight by 10: far beyond the clipping norm.
    moved = _net.State((k, v + 10.0) for k, v in sent.items())

    aggregated, metrics = strategy.aggregate_train(1, [_reply(moved, 1, 30), _reply(moved, 2, 10)])

    assert aggregated is not None and metrics is not None
    got = _net.from_record(aggregated)
    step = np.sqrt(sum(float(np.sum((got[k] - sent[k]) ** 2)) for k in sent))
    unclipped = 10.0 * np.sqrt(sum(v.size for v in sent.values()))
    assert step == pytest.approx(unclipped if clip is None else clip, rel=1e-3)
    assert metrics["participants"] == 2


def test_the_scale_pooled_from_devices_sums_is_that_of_their_rows_together() -> None:
    regimes = Regimes(seed=2)
    devices = [regimes.device(i, rows) for i, rows in enumerate((30, 70, 11))]
    pooled = np.concatenate([x for x, _ in devices]).astype(np.float64)

    mean, std = _net.pooled_scaling([_net.moments(x) for x, _ in devices])

    assert np.allclose(mean, pooled.mean(axis=0))
    assert np.allclose(std, pooled.std(axis=0))


@pytest.mark.usefixtures("aggregator")
def test_a_client_that_misses_the_first_question_is_asked_again_and_trains(tmp_path) -> None:
    files = Regimes(seed=7).files(tmp_path, devices=2, rows=40)
    grid = LocalGrid(files, client_app, late={2})

    result = federate(grid, FederatedConfig(rounds=1, min_clients=2, hidden=8))

    assert [m.metadata.message_type for m in grid.received[2]] == ["query", "query", "train"]
    assert result.history[0].participants == 2


def test_secagg_refuses_dp_clipping_naming_both() -> None:
    with pytest.raises(ValidationError, match=r"secagg.*dp_clip"):
        FederatedConfig(secagg=True, dp_clip=1.0)


@pytest.mark.usefixtures("aggregator")
def test_secagg_aggregates_as_fedavg_does_while_the_aggregator_gets_masked_updates_only(
    tmp_path,
) -> None:
    files = Regimes(seed=6).files(tmp_path, devices=3, rows=60)
    config = FederatedConfig(rounds=1, min_clients=3, hidden=8)
    plain = federate(LocalGrid(files, client_app), config)
    grid = LocalGrid(files, client_app)

    secure = federate(grid, config.model_copy(update={"secagg": True}))

    # The same clients train alike from the same model: only SecAgg+'s quantisation differs.
    for name, value in plain.state.items():
        assert np.allclose(secure.state[name], value, atol=1e-4), name
    assert secure.history[0].participants == 3
    assert secure.history[0].accuracy == pytest.approx(plain.history[0].accuracy)
    masked = [
        reply.content.config_records[RECORD_KEY_CONFIGS][Key.MASKED_PARAMETERS]
        for replies in grid.replies.values()
        for reply in replies
        if Key.MASKED_PARAMETERS in reply.content.config_records.get(RECORD_KEY_CONFIGS, {})
    ]
    assert len(masked) == 3
    # No reply carries weights in the clear; a masked update read as SecAgg+ quantised it lies
    # far outside the +-8 every update is clipped to: it is noise until the masks cancel.
    assert not any(
        len(record)
        for replies in grid.replies.values()
        for r in replies
        for record in r.content.array_records.values()
    )
    for vectors in masked:
        values = dequantize([bytes_to_ndarray(b) for b in vectors], 8.0, 2**22)
        assert max(float(np.abs(v).max()) for v in values) > 100.0


def _raw_windows(rows: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of 4 channels, `size` samples each, flattened channel by channel: class c
    rings at c + 1 cycles a window on the first three channels, the fourth drifts slowly."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, rows)
    t = np.arange(size) / size
    phase = rng.uniform(0, 2 * np.pi, (rows, 1, 1))
    ring = np.sin(2 * np.pi * (y[:, None, None] + 1) * t + phase) * np.ones((1, 3, 1))
    slow = 40.0 + rng.normal(0, 0.5, (rows, 1, 1)) * np.ones((1, 1, size))
    x = np.concatenate([ring + rng.normal(0, 0.3, ring.shape), slow], axis=1)
    return x.reshape(rows, -1).astype(np.float32), y


@pytest.mark.usefixtures("aggregator")
def test_a_cnn1d_trains_on_raw_windows_shaped_by_the_clients_spec(tmp_path) -> None:
    spec = vibration_spec(window=32, hop=32)
    files = []
    for i in range(2):
        x, y = _raw_windows(90, 32, seed=i)
        files.append(save_local_windows(tmp_path / f"d{i}.npz", x, NAMES[y], spec))
    config = FederatedConfig(model="cnn1d", filters=4, rounds=2, min_clients=2, local_epochs=3)

    result = federate(LocalGrid(files, client_app), config)

    assert result.state["2.weight"].shape == (4, 4, 7)  # filters, the spec's channels, kernel
    # Each channel scaled as one, over both devices' windows: the slow one by its own level.
    assert np.allclose(result.state["0.mean"][96:], 40.0, atol=0.2)
    x_test, y_test = _raw_windows(150, 32, seed=9)
    assert (result.predict(x_test) == y_test).mean() > 0.8


@pytest.mark.parametrize("model", ["mlp", "cnn1d"])
def test_the_onnx_export_gives_the_probabilities_predict_decides_by(model: str) -> None:
    from edgestack.learning.zoo import _torch  # torch, imported by the tests that train

    x, y = _raw_windows(40, 16, seed=3)
    scaling = (x.mean(axis=0), x.std(axis=0))
    if model == "cnn1d":
        state = _net.build_cnn1d((4, 16), CLASSES, 4, seed=1, scaling=scaling)
    else:
        state = _net.build(64, CLASSES, 8, seed=1, scaling=scaling)
    state = _net.train(
        state, x, y, epochs=2, batch_size=8, learning_rate=0.01, proximal_mu=0.0, seed=0
    )
    result = FederatedResult(state, [], list(NAMES))

    exported = result.to_onnx()

    (probabilities,) = ort.InferenceSession(exported).run(None, {"features": x})
    logits = _torch.forward(_net.from_state(state), x)
    assert np.allclose(probabilities, softmax(logits, axis=1), atol=1e-5)
    assert (probabilities.argmax(axis=1) == result.predict(x)).all()
    metadata = {p.key: p.value for p in onnx.load_from_string(exported).metadata_props}
    assert json.loads(metadata[LABELS_KEY]) == list(NAMES)
