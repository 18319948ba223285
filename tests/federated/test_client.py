import time

import numpy as np
import pytest
from flwr.app import (
    DEFAULT_TTL,
    ConfigRecord,
    Context,
    Message,
    MessageType,
    Metadata,
    RecordDict,
)
from flwr.serverapp.strategy import DifferentialPrivacyServerSideFixedClipping, FedProx
from pydantic import ValidationError

from edgestack.federated import DATA_PATH, FederatedConfig, _net, client_app, make_strategy
from edgestack.federated.client import save_local_windows

from .windows import CLASSES, WIDTH, Regimes

ROWS = 57  # no layer of the net has this many units, so a row-shaped array would stand out


def _train_message(state: _net.State, proximal_mu: float = 0.0) -> Message:
    config = ConfigRecord(
        {
            "local_epochs": 5,
            "batch_size": 16,
            "learning_rate": 0.05,
            "seed": 0,
            "server-round": 1,
            "proximal-mu": proximal_mu,
        }
    )
    content = RecordDict({"arrays": _net.to_record(state), "config": config})
    # As a SuperNode hands it to the app: metadata set by the SuperLink, outside any run here.
    metadata = Metadata(
        run_id=1,
        message_id="m1",
        src_node_id=0,
        dst_node_id=1,
        reply_to_message_id="",
        group_id="1",
        created_at=time.time(),
        ttl=DEFAULT_TTL,
        message_type=MessageType.TRAIN,
    )
    return Message(content=content, metadata=metadata)


def _context(node_config: dict[str, str]) -> Context:
    return Context(run_id=1, node_id=1, node_config=node_config, state=RecordDict(), run_config={})


@pytest.fixture
def device(tmp_path):
    x, y = Regimes(seed=1).device(0, ROWS)
    return x, y, save_local_windows(tmp_path / "windows.npz", x, y)


def test_a_client_answers_with_the_models_parameters_and_counts_only(device) -> None:
    x, _, path = device
    sent = _net.build(WIDTH, CLASSES, hidden=32, seed=0)

    reply = client_app(_train_message(sent), _context({DATA_PATH: str(path)}))

    arrays = _net.from_record(reply.content.array_records["arrays"])
    assert set(reply.content.keys()) == {"arrays", "metrics"}
    assert {k: v.shape for k, v in arrays.items()} == {k: v.shape for k, v in sent.items()}
    assert all(ROWS not in a.shape for a in arrays.values())
    rows = {tuple(row) for row in x}
    assert not any(tuple(row) in rows for a in arrays.values() if a.ndim == 2 for row in a)
    assert dict(reply.content.metric_records["metrics"]).keys() == {
        "num-examples",
        "loss",
        "accuracy",
    }
    assert reply.content.metric_records["metrics"]["num-examples"] == ROWS
    assert not np.allclose(arrays["1.weight"], sent["1.weight"])  # it did train


def test_fedprox_keeps_a_client_nearer_the_model_it_was_sent(device) -> None:
    _, _, path = device
    sent = _net.build(WIDTH, CLASSES, hidden=32, seed=0)

    def drift(mu: float) -> float:
        reply = client_app(_train_message(sent, mu), _context({DATA_PATH: str(path)}))
        got = _net.from_record(reply.content.array_records["arrays"])
        return sum(float(np.sum((got[k] - sent[k]) ** 2)) for k in sent)

    assert drift(10.0) < drift(0.0)


def test_a_client_without_windows_says_which_node_setting_is_missing() -> None:
    sent = _net.build(WIDTH, CLASSES, hidden=8, seed=0)

    with pytest.raises(ValueError, match=DATA_PATH):
        client_app(_train_message(sent), _context({}))


def test_windows_of_another_width_are_refused_naming_the_columns(tmp_path) -> None:
    path = save_local_windows(tmp_path / "w.npz", np.zeros((4, WIDTH + 1)), np.zeros(4, int))

    with pytest.raises(ValueError, match="columns"):
        client_app(
            _train_message(_net.build(WIDTH, CLASSES, 8, seed=0)), _context({DATA_PATH: str(path)})
        )


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

    back = FederatedConfig.from_run_config({**config.to_run_config(), "result-path": "r.npz"})

    assert back == config
