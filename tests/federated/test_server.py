from unittest.mock import create_autospec

import numpy as np
import pytest
from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedProx
from flwr.supercore.task_identity import TaskIdentity
from pydantic import ValidationError

from edgestack.federated import RESULT_PATH, FederatedConfig, _net, make_strategy

from .factories import CLASSES, WIDTH, Regimes, delivered


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


def test_a_config_survives_flowers_run_config() -> None:
    config = FederatedConfig(width=WIDTH, classes=CLASSES, rounds=4, dp_clip=1.5)

    back = FederatedConfig.from_run_config({**config.to_run_config(), RESULT_PATH: "r.npz"})

    assert back == config


def _reply(update: _net.State, node: int, examples: int) -> Message:
    metrics = MetricRecord({"num-examples": examples, "loss": 1.0, "accuracy": 0.5})
    content = RecordDict({"arrays": _net.to_record(update), "metrics": metrics})
    return delivered(content, src=node, dst=0, reply_to=f"to-{node}")


@pytest.fixture
def aggregator(monkeypatch):
    """This process as a ServerApp's, which Flower gives an identity before it sends."""
    for name, value in {"_run_id": 1, "_node_id": 0, "_task_id": 1}.items():
        monkeypatch.setattr(TaskIdentity, name, value)


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
