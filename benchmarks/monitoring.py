"""What monitoring a window costs, against what classifying it costs.

The model is a random forest on the motor's features (the motor app's input spec: 4 channels
at 8 kHz, windows of 2048 samples), trained here. Per window, one thread, as on a device:

- the anchor: a bare ONNX Runtime call of the model on the window's feature row;
- each registered detector fed the window's top-class probability;
- the drift sketch updated with the window's feature row;
- the interval summary given the call's latency and probabilities;
- the energy anomaly score of the window's samples.

`monitoring_ratio` is all of them together over the anchor. `agent_monitor_ratio` is the
agent's `ModelMonitor` doing the same per window, over the anchor: it holds windows back and
feeds them to the summary, sketch, detectors and score a batch at a time. The agent's whole
hot path costs more than the anchor (features too), so its overhead from monitoring is
smaller than these ratios. Best of several runs each.

    python benchmarks/monitoring.py   # a table, then one JSON line
"""

import os

# Before numpy loads: one core, as on a device.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json
import time
from collections.abc import Callable

import numpy as np
import onnxruntime as ort
from rich.console import Console
from rich.table import Table

from edgestack.agent.monitor import ModelMonitor
from edgestack.learning import train_classifier
from edgestack.monitoring import DETECTORS, DriftSketch, EnergyScore, Interval, reference
from edgestack.processing import FeaturePipeline, vibration_spec
from edgestack.protocol import BundleRef
from edgestack.sensing import FAULTS, MotorSimulator, Quality

WINDOWS = 400
REPEATS = 5


def _windows_and_rows() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Windows of the motor through each fault, their feature rows and fault names."""
    spec = vibration_spec()
    windows, rows, labels = [], [], []
    for fault in FAULTS:
        motor = MotorSimulator(3, start=0.0)
        motor.inject(fault)
        chunk = motor.read(spec.window * 40)
        rows.append(FeaturePipeline(spec).push(chunk))
        step = spec.hop
        count = len(rows[-1])
        windows += [chunk.data[:, i * step : i * step + spec.window] for i in range(count)]
        labels += [fault] * count
    return np.stack(windows), np.vstack(rows).astype(np.float32), labels


def _best_per_window(work: Callable[[int], None]) -> float:
    """Seconds per window of `work(i)` over `WINDOWS` windows, best of `REPEATS` runs."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for i in range(WINDOWS):
            work(i)
        best = min(best, time.perf_counter() - start)
    return best / WINDOWS


def main() -> None:
    windows, rows, labels = _windows_and_rows()
    trained = train_classifier(rows, labels, seed=0)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(trained.onnx, options, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    n = len(rows)
    probabilities = [session.run(None, {feed: rows[i % n : i % n + 1]})[-1] for i in range(n)]
    top = np.array([p.max() for p in probabilities])
    quality = Quality()
    sketch, interval, energy = DriftSketch(reference(rows)), Interval(trained.labels), EnergyScore()

    costs = {
        "anchor: model call": _best_per_window(
            lambda i: session.run(None, {feed: rows[i % n : i % n + 1]})
        )
    }
    for name in DETECTORS.names():
        detector = DETECTORS.build(name)
        costs[f"detector {name}"] = _best_per_window(
            lambda i, d=detector: d.update(top[i % n : i % n + 1], quality)
        )
    costs["drift sketch update"] = _best_per_window(
        lambda i: sketch.update(rows[i % n : i % n + 1], quality)
    )
    costs["interval add"] = _best_per_window(lambda i: interval.add(1e-4, probabilities[i % n]))
    costs["energy anomaly score"] = _best_per_window(
        lambda i: energy.update(windows[i % n : i % n + 1], quality)
    )

    ref = BundleRef(name="motor", version=1, digest="0" * 64)
    monitor = ModelMonitor(ref, trained.labels, reference(rows))
    agent_monitor = _best_per_window(
        lambda i: monitor.add(
            1e-4, probabilities[i % n], rows[i % n : i % n + 1], windows[i % n : i % n + 1]
        )
    )

    anchor = costs["anchor: model call"]
    monitoring = sum(cost for name, cost in costs.items() if not name.startswith("anchor"))
    table = Table("per window", "us", "/ anchor", title="monitoring, one thread")
    for name, cost in costs.items():
        table.add_row(name, f"{cost * 1e6:.1f}", f"{cost / anchor:.2f}")
    table.add_row("all monitoring", f"{monitoring * 1e6:.1f}", f"{monitoring / anchor:.2f}")
    table.add_row(
        "the agent's monitor, batched",
        f"{agent_monitor * 1e6:.1f}",
        f"{agent_monitor / anchor:.2f}",
    )
    Console().print(table)
    print(
        json.dumps(
            {"us_per_window": {k: round(v * 1e6, 2) for k, v in costs.items()}}
            | {
                "monitoring_ratio": round(monitoring / anchor, 3),
                "agent_monitor_ratio": round(agent_monitor / anchor, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
