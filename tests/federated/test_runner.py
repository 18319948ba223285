"""Federations of real processes on loopback: a SuperLink and one SuperNode per device."""

import time
from pathlib import Path

import numpy as np
import pytest

from edgestack.federated import FederatedConfig, Federation, Tap, _net

from .factories import CLASSES, NAMES, WIDTH, Regimes

pytestmark = pytest.mark.integration

# Generous: every message starts a fresh app process, which imports torch, on a busy machine.
ROUND_TIMEOUT = 45.0


def test_three_clients_with_non_iid_windows_reach_a_model_near_a_central_one_uplinking_no_row(
    tmp_path: Path,
) -> None:
    regimes = Regimes(seed=3)
    files = regimes.files(tmp_path, devices=3, rows=120)
    config = FederatedConfig(rounds=2, min_clients=3, round_timeout=ROUND_TIMEOUT)
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

    with Federation(tmp_path / "run", config) as federation, Tap(federation.address) as tap:
        for path in files:
            federation.add_client(path, via=tap.address)
        result = federation.run()

    federated_accuracy = float((result.predict(x_test) == y_test).mean())
    _, central_accuracy = _net.evaluate(central, x_test, y_test)
    assert federated_accuracy >= central_accuracy - 0.03
    assert [r.round for r in result.history] == [1, 2]
    assert result.labels == list(NAMES)  # the union of the names the devices hold
    assert all(r.participants >= 2 for r in result.history)
    # Rows scaled alike on every device, by their pooled scale, from column sums.
    assert np.allclose(result.state["0.mean"], scaling[0], atol=1e-4)
    assert np.allclose(result.state["0.std"], scaling[1], rtol=1e-3)
    # Round 2 started from round 1's aggregate, which fits the devices' windows.
    assert result.history[1].accuracy is not None and result.history[1].accuracy > 0.8
    # Weights cross the link as their raw bytes (the first model went down that way), so a row
    # sent up would show as its own bytes: none does.
    first = _net.build(WIDTH, CLASSES, config.hidden, seed=config.seed)
    assert first["1.weight"].tobytes() in tap.downlink
    assert len(tap.uplink) > 0
    assert not any(row.tobytes() in tap.uplink for row in rows)


def test_a_client_killed_mid_round_does_not_stall_the_round(tmp_path: Path) -> None:
    files = Regimes(seed=4).files(tmp_path, devices=3, rows=60)
    config = FederatedConfig(
        rounds=1,
        min_clients=2,
        # the dead client costs this whole wait; the live ones answer within seconds
        round_timeout=ROUND_TIMEOUT / 2,
        scale=False,
    )

    with Federation(tmp_path / "run", config) as federation:
        clients = [federation.add_client(f) for f in files]
        federation.submit()
        doomed = clients[2]
        deadline = time.monotonic() + 180
        while "Receiving: train message" not in doomed.log.read_text(errors="replace"):
            assert time.monotonic() < deadline, "the client never got its first round"
            time.sleep(0.2)
        doomed.kill()
        result = federation.wait()

    assert [r.round for r in result.history] == [1]
    assert 1 <= result.history[0].participants <= 2
    assert all(np.isfinite(a).all() for a in result.state.values())
