import json
from unittest.mock import create_autospec

import numpy as np
import pytest
from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedProx
from pydantic import ValidationError

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
