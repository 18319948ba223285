"""Federated learning on Flower against training on the pooled windows, on non-IID device
data: the simulated motor's three conditions (normal, imbalance, bearing wear) on three
machines, each machine a device with its own operating regime (its own seed: shaft speed,
load, resonances) and a skewed share of the conditions (70% of one, 15% of each other).
Every device holds the feature rows of its windows (the motor app's features); the rows
never leave it. Everything runs as real processes on loopback: a SuperLink and one SuperNode
per device, every byte the devices send passing through a `Tap`.

- `fl_gap_pts`: accuracy of the model trained centrally on every device's rows (same net,
  same passes over the rows) minus the federated model's, in points, on fresh windows of
  every condition from every machine. Goal <= 1.0.
- `fl_rounds`: rounds the federation ran. Goal <= 30.
- `fl_raw_bytes_uplinked`: bytes of the devices' feature rows found in what they sent
  (each row looked for as its own float32 bytes, which is how arrays cross the link: the
  first model went down that way). Goal 0.
- `fl_uplink_bytes`: all the devices sent, requests and their framing included.

    python benchmarks/federated.py   # a table, then one JSON line
"""

import json
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from edgestack.federated import FederatedConfig, Federation, Tap, _net, save_local_windows
from edgestack.processing import FeaturePipeline, vibration_spec
from edgestack.sensing import FAULTS, MotorSimulator

DEVICES = 3
WINDOWS = 60  # per device
OWN_SHARE = 0.7
HELD_OUT = 20  # windows per condition and machine
ROUNDS = 10


def _windows(machine: int, fault: int, count: int, seed: int) -> np.ndarray:
    """Feature rows of `count` windows of `machine` in condition `fault`."""
    spec = vibration_spec()
    motor = MotorSimulator(1000 * seed + machine, start=0.0)
    motor.inject(FAULTS[fault])
    return FeaturePipeline(spec).push(motor.read(spec.window * count))


def _device(machine: int) -> tuple[np.ndarray, np.ndarray]:
    """A device's feature rows and the condition's name of each."""
    rest = (1 - OWN_SHARE) / (len(FAULTS) - 1)
    counts = [round(WINDOWS * (OWN_SHARE if f == machine else rest)) for f in range(len(FAULTS))]
    rows = [_windows(machine, f, n, seed=1) for f, n in enumerate(counts)]
    return np.vstack(rows), np.repeat(FAULTS, [len(r) for r in rows])


def _held_out() -> tuple[np.ndarray, np.ndarray]:
    rows = [_windows(m, f, HELD_OUT, seed=2) for m in range(DEVICES) for f in range(len(FAULTS))]
    names = [FAULTS[f] for m in range(DEVICES) for f in range(len(FAULTS))]
    return np.vstack(rows), np.repeat(names, [len(r) for r in rows])


def main() -> None:
    devices = [_device(m) for m in range(DEVICES)]
    x_test, names_test = _held_out()
    # The run's classes are the sorted names the devices hold; central training uses the same.
    classes = sorted(FAULTS)
    config = FederatedConfig(
        rounds=ROUNDS,
        min_clients=DEVICES,
        round_timeout=120,
    )
    rows = np.vstack([x for x, _ in devices]).astype(np.float32)
    scaling = (rows.mean(axis=0), rows.std(axis=0))
    width = x_test.shape[1]
    central = _net.train(
        _net.build(width, len(classes), config.hidden, seed=0, scaling=scaling),
        rows,
        np.searchsorted(classes, np.concatenate([names for _, names in devices])),
        epochs=config.rounds * config.local_epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        proximal_mu=0.0,
        seed=0,
    )
    _, central_accuracy = _net.evaluate(central, x_test, np.searchsorted(classes, names_test))

    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        files = [
            save_local_windows(workdir / f"device-{i}.npz", x, names, vibration_spec())
            for i, (x, names) in enumerate(devices)
        ]
        with Federation(workdir / "run", config) as federation, Tap(federation.address) as tap:
            for path in files:
                federation.add_client(path, via=tap.address)
            result = federation.run()
    predicted = np.asarray(result.labels)[result.predict(x_test)]
    federated_accuracy = float((predicted == names_test).mean())
    first = _net.build(width, len(classes), config.hidden, seed=config.seed)
    if first["1.weight"].tobytes() not in tap.downlink:
        raise SystemExit("the first model did not cross the link as raw bytes: the search is void")
    leaked = sum(len(row.tobytes()) for row in rows if row.tobytes() in tap.uplink)

    table = Table(title=f"{DEVICES} devices, {WINDOWS} windows each, {ROUNDS} rounds of FedAvg")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("central accuracy (pooled rows)", f"{central_accuracy:.3f}")
    table.add_row("federated accuracy", f"{federated_accuracy:.3f}")
    for record in result.history:
        table.add_row(
            f"round {record.round}: participants, accuracy of the model it started from",
            f"{record.participants}, {record.accuracy or 0:.3f}",
        )
    table.add_row("bytes uplinked, all devices", f"{len(tap.uplink):,}")
    table.add_row("bytes of feature rows among them", f"{leaked:,}")
    Console().print(table)
    print(
        json.dumps(
            {
                "fl_gap_pts": round(100 * (central_accuracy - federated_accuracy), 2),
                "fl_rounds": len(result.history),
                "fl_raw_bytes_uplinked": leaked,
                "fl_uplink_bytes": len(tap.uplink),
                "fl_central_accuracy": round(central_accuracy, 4),
                "fl_federated_accuracy": round(federated_accuracy, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
