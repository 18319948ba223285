"""Federated learning on Flower against training on the pooled windows, on non-IID device
data: the simulated motor's three conditions (normal, imbalance, bearing wear) on three
machines, each machine a device with its own operating regime (its own seed: shaft speed,
load, resonances) and a skewed share of the conditions (70% of one, 15% of each other).
Every device holds the feature rows of its windows (the motor app's features); the rows
never leave it. Everything runs as real processes on loopback: a SuperLink and one SuperNode
per device, every byte the devices send passing through a `Tap`.

- `fl_gap_pts`: accuracy of the model trained centrally on every device's rows (same net,
  same passes over the rows) minus the federated model's, in points, on windows of every
  condition from three machines of another fleet (other seeds). Goal <= 1.0.
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
from shared import Windows, federated_vs_central, motor_windows, skewed_counts

from edgestack.sensing import FAULTS

DEVICES = 3
WINDOWS = 60  # per device
OWN_SHARE = 0.7
HELD_OUT = 20  # windows per condition and machine
ROUNDS = 10


def _device(machine: int) -> tuple[np.ndarray, np.ndarray]:
    counts = skewed_counts(machine, WINDOWS, OWN_SHARE)
    rows = Windows.join([motor_windows(machine, f, n, seed=1) for f, n in enumerate(counts)])
    return rows.features, rows.faults


def _held_out() -> Windows:
    return Windows.join(
        [motor_windows(m, f, HELD_OUT, seed=2) for m in range(DEVICES) for f in range(len(FAULTS))]
    )


def main() -> None:
    devices = [_device(m) for m in range(DEVICES)]
    test = _held_out()
    with tempfile.TemporaryDirectory() as scratch:
        fl = federated_vs_central(
            devices, test.features, test.faults, rounds=ROUNDS, workdir=Path(scratch)
        )

    table = Table(title=f"{DEVICES} devices, {WINDOWS} windows each, {ROUNDS} rounds of FedAvg")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("central accuracy (pooled rows)", f"{fl.central_accuracy:.3f}")
    table.add_row("federated accuracy", f"{fl.federated_accuracy:.3f}")
    for record in fl.result.history:
        table.add_row(
            f"round {record.round}: participants, accuracy of the model it started from",
            f"{record.participants}, {record.accuracy or 0:.3f}",
        )
    table.add_row("bytes uplinked, all devices", f"{fl.uplink_bytes:,}")
    table.add_row("bytes of feature rows among them", f"{fl.raw_bytes_uplinked:,}")
    Console().print(table)
    print(
        json.dumps(
            {
                "fl_gap_pts": round(fl.gap_pts, 2),
                "fl_rounds": len(fl.result.history),
                "fl_raw_bytes_uplinked": fl.raw_bytes_uplinked,
                "fl_uplink_bytes": fl.uplink_bytes,
                "fl_central_accuracy": round(fl.central_accuracy, 4),
                "fl_federated_accuracy": round(fl.federated_accuracy, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
