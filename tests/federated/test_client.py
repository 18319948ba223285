import json

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict

from edgestack.bundle import InputSpec
from edgestack.federated import DATA_PATH, _net, client_app, save_local_windows
from edgestack.processing import vibration_spec

from .factories import CLASSES, NAMES, WIDTH, Regimes, delivered

ROWS = 57  # no layer of the net has this many units, so a row-shaped array would stand out


def _train_message(
    state: _net.State, proximal_mu: float = 0.0, classes: tuple[str, ...] = tuple(NAMES)
) -> Message:
    config = ConfigRecord(
        {
            "classes": json.dumps(classes),
            "local_epochs": 5,
            "batch_size": 16,
            "learning_rate": 0.05,
            "seed": 0,
            "server-round": 1,
            "proximal-mu": proximal_mu,
        }
    )
    content = RecordDict({"arrays": _net.to_record(state), "config": config})
    return delivered(content, src=0, dst=1)


def _context(node_config: dict[str, str]) -> Context:
    return Context(run_id=1, node_id=1, node_config=node_config, state=RecordDict(), run_config={})


@pytest.fixture
def device(tmp_path):
    x, y = Regimes(seed=1).device(0, ROWS)
    return x, y, save_local_windows(tmp_path / "windows.npz", x, NAMES[y])


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
    path = save_local_windows(tmp_path / "w.npz", np.zeros((4, WIDTH + 1)), ["normal"] * 4)

    with pytest.raises(ValueError, match="columns"):
        client_app(
            _train_message(_net.build(WIDTH, CLASSES, 8, seed=0)), _context({DATA_PATH: str(path)})
        )


def test_rows_of_a_label_the_run_does_not_know_sit_the_round_out(device) -> None:
    _, y, path = device
    sent = _net.build(WIDTH, 2, hidden=8, seed=0)

    reply = client_app(
        _train_message(sent, classes=("imbalance", "bearing")), _context({DATA_PATH: str(path)})
    )

    assert reply.content.metric_records["metrics"]["num-examples"] == int((y != 2).sum())


def test_label_names_are_one_string_a_row(tmp_path) -> None:
    with pytest.raises(ValueError, match="labels"):
        save_local_windows(tmp_path / "w.npz", np.zeros((3, WIDTH)), [0, 1, 2])
    with pytest.raises(ValueError, match="labels"):
        save_local_windows(tmp_path / "w.npz", np.zeros((3, WIDTH)), ["a", "b"])


def test_a_client_tells_its_label_names_spec_and_scale_never_a_row(tmp_path) -> None:
    x, y = Regimes(seed=1).device(0, ROWS)
    spec = vibration_spec()
    path = save_local_windows(tmp_path / "w.npz", x, NAMES[y], spec)
    ask = delivered(RecordDict(), src=0, dst=1, kind=MessageType.QUERY)

    reply = client_app(ask, _context({DATA_PATH: str(path)}))

    assert set(reply.content.keys()) == {"metrics", "names"}
    metrics = reply.content.metric_records["metrics"]
    assert set(metrics.keys()) == {"num-examples", "sum", "sum-squares"}
    assert metrics["num-examples"] == ROWS
    assert np.allclose(metrics["sum"], x.sum(axis=0), rtol=1e-5)
    assert len(metrics["sum-squares"]) == WIDTH
    names = reply.content.config_records["names"]
    assert names["labels"] == sorted(set(NAMES[y]))
    assert InputSpec.model_validate_json(str(names["spec"])) == spec
