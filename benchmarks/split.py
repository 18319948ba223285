"""A net with an early exit cut between a device and a server, against the best single tier.

The net is the zoo's `cnn1d_exits`, trained on raw accelerometer windows (3 axes, 512 samples)
of simulated motors through each fault; its windows for the run come from a machine it never
saw. The split is chosen as `edgestack.learning.split.plan_split` chooses it: its blocks timed
alone here, scaled by the device profile's `speed_factor` (`pi`), the server's by `cloud`'s,
over a link of stated bandwidth and round trip, the exit's share taken on the training
machine's held-out windows at the stated threshold. The intermediate tensor crosses as int8.

Then each test window is run as a device and a server would run it, one window at a time,
ONNX Runtime on one thread: the head (or the whole net) timed here and scaled by the
profiles, the link modelled from its bandwidth and round trip. Per window:

- device only: the whole net on the device;
- cloud only: the window sent whole, the whole net on the server;
- split: the head and its exit on the device; a window the exit is not sure of goes on as
  int8 tensor to the tail on the server.

- `split_latency_vs_best_single_tier`: mean end-to-end latency of the split over the lower
  of device only and cloud only (goal <= 1.0), on the profile and link it states;
- `split_acc_vs_whole`: accuracy of the split's answers over the whole net's;
- `split_uplink_vs_cloud_only`: bytes the split sends over those cloud only sends;
- `split_at`, `early_share`: where it was cut, and the share of test windows the exit
  answered on the device.

    python benchmarks/split.py   # a table, then one JSON line
"""

import os

# Before numpy loads: one core, as on a device.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json
import time

import numpy as np
import onnxruntime as ort
from rich.console import Console
from rich.table import Table
from shared import (
    EXIT_THRESHOLD,
    SPLIT_DEVICE,
    SPLIT_LINK,
    SPLIT_SERVER,
    Windows,
    exits_net,
    motor_windows,
)

from edgestack.sensing import FAULTS

DEVICE, SERVER, LINK, THRESHOLD = SPLIT_DEVICE, SPLIT_SERVER, SPLIT_LINK, EXIT_THRESHOLD


def windows(machine: int, per_fault: int) -> Windows:
    """Windows of one simulated machine through each fault."""
    return Windows.join([motor_windows(machine, f, per_fault, seed=0) for f in range(len(FAULTS))])


def session(model: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def timed(model: ort.InferenceSession, feed: dict[str, np.ndarray]) -> tuple[list, float]:
    """`model`'s outputs for `feed` and its milliseconds, best of three (one window is too
    short for one reading to stand against the scheduler)."""
    best, out = float("inf"), []
    for _ in range(3):
        start = time.perf_counter_ns()
        out = model.run(None, feed)
        best = min(best, (time.perf_counter_ns() - start) / 1e6)
    return out, best


def transfer_ms(size: int) -> float:
    return LINK.rtt_ms + 1000 * size / LINK.bandwidth_bytes_per_s


def main() -> None:
    trained = windows(1, per_fault=60)
    test = windows(2, per_fault=30)
    x_test, y_test = test.raw, test.faults
    net = exits_net(trained.raw, trained.faults)
    trainer, plan = net.trainer, net.plan
    whole = session(trainer.to_onnx())
    # A plan for one tier alone runs the whole net there, as `package_split` packages it.
    alone = {0: "cloud only", plan.blocks: "device only"}.get(plan.at)
    if alone is None:
        cut = trainer.split(plan.at, int8_from=net.trained_on)
        head, tail = session(cut.head), session(cut.tail)

    spent: dict[str, list[float]] = {"device only": [], "cloud only": [], "split": []}
    answers: dict[str, list[int]] = {"device only": [], "cloud only": [], "split": []}
    sent = {"device only": 0, "cloud only": 0, "split": 0}
    early_answers = 0
    for row in x_test:
        window = row[None, :]
        whole_out, ms = timed(whole, {"features": window})
        answer = int(whole_out[0].argmax())
        spent["device only"].append(ms * DEVICE.speed_factor)
        spent["cloud only"].append(transfer_ms(window.nbytes) + ms * SERVER.speed_factor)
        sent["cloud only"] += window.nbytes
        answers["device only"].append(answer)
        answers["cloud only"].append(answer)
        if alone is not None:
            spent["split"].append(spent[alone][-1])
            answers["split"].append(answer)
            sent["split"] += window.nbytes if alone == "cloud only" else 0
            continue
        (early, tensor), head_ms = timed(head, {"features": window})
        took = head_ms * DEVICE.speed_factor
        answer = int(early.argmax())
        if early.max() >= THRESHOLD:
            early_answers += 1
        else:
            (final,), tail_ms = timed(tail, {"intermediate": tensor})
            took += transfer_ms(tensor.nbytes) + tail_ms * SERVER.speed_factor
            sent["split"] += tensor.nbytes
            answer = int(final.argmax())
        spent["split"].append(took)
        answers["split"].append(answer)

    accuracy = {k: float(np.mean(np.array(v) == y_test)) for k, v in answers.items()}
    mean_ms = {k: float(np.mean(v)) for k, v in spent.items()}
    table = Table(
        "policy", "mean ms", "p99 ms", "accuracy", "uplink bytes",
        title=f"device {DEVICE.name}, server {SERVER.name}, link "
        f"{LINK.bandwidth_bytes_per_s / 1e3:.0f} kB/s + {LINK.rtt_ms:.0f} ms; cut after "
        f"{plan.point} (at {plan.at}), threshold {THRESHOLD}, expected {plan.expected_ms:.2f} ms",
    )  # fmt: skip
    for policy, took in spent.items():
        table.add_row(
            policy,
            f"{mean_ms[policy]:.2f}",
            f"{np.percentile(took, 99):.2f}",
            f"{100 * accuracy[policy]:.1f}%",
            str(sent[policy]),
        )
    Console().print(table)
    best_single = min(mean_ms["device only"], mean_ms["cloud only"])
    print(
        json.dumps(
            {
                "split_latency_vs_best_single_tier": round(mean_ms["split"] / best_single, 3),
                "split_acc_vs_whole": round(accuracy["split"] / accuracy["device only"], 3),
                "split_uplink_vs_cloud_only": round(sent["split"] / sent["cloud only"], 3),
                "split_at": plan.at,
                "early_share": round(early_answers / len(x_test), 3),
                "device": DEVICE.name,
                "server": SERVER.name,
                "bandwidth_bytes_per_s": LINK.bandwidth_bytes_per_s,
                "rtt_ms": LINK.rtt_ms,
            }
        )
    )


if __name__ == "__main__":
    main()
