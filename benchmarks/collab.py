"""Device, edge and cloud working together, measured in one run on non-IID device data: joint
inference with an offload budget, a net split with an early exit, and federated learning.

The fleet is three simulated motors, each its own machine (shaft speed, load, resonances, its
operating regimes changing as it runs) with a fault of its own strength injected in turn:
each device sees mostly one condition (70% of its windows, 15% of each other) at severity
0.2, 0.4 or 0.8 of its faults. Every device's recording is cut in time: the first two thirds
train, the last third is the test, so every model meets later windows of the machines it
learnt on. Every model trains on the pooled training windows, except the federated one, whose
rows never leave their device.

- Joint inference (`edgestack.learning.tradeoff`): the device's model is a logistic
  regression on the motor app's features, regularised hard (C 0.003) so that it errs on a few
  percent of the windows, as a model small enough for an `mcu` does; the cloud's is a random
  forest on the same features (`cloud` profile), over a link of `JOINT_LINK`. The offload
  threshold (confidence gate) is calibrated on every other test window at `FRACTION` and
  measured on the rest. `joint_acc_vs_cloud`: the joint answers' accuracy over the cloud
  model's (goal >= 0.99), at the measured `offload_fraction` (goal <= 0.2);
  `joint_uplink_vs_cloud_only`: the bytes joint inference sends over those cloud only sends
  (goal <= 0.25).
- The same policy live: a hub and one device agent as real processes on loopback. The device
  (machine 1, through each condition in turn at its severity) runs the small model, its
  threshold calibrated on the small model's own held-out training windows; the hub's cloud
  tier answers with the forest; the device's telemetry says how many windows it sent and the
  bytes that took (`live_offload_fraction`, `live_uplink_bytes_per_offload`), beside
  `computed_offload_fraction_same_stream`, the share of that machine's test windows the policy
  sends, each condition weighing alike as in the live stream.
- Split: the zoo's `cnn1d_exits` on the raw windows (3 axes, 512 samples), cut as
  `plan_split` chooses for an `mcu` device and a `cloud` server over 1 MB/s and 5 ms, the
  tensor as int8, exit threshold 0.8; `split_latency_vs_best_single_tier` is the split's mean
  latency over the lower of the whole net on the device and on the server (goal <= 1.0), and
  `split_acc_vs_whole` the split's accuracy over the whole net's.
- Federated: `fl_gap_pts`, centralised minus federated accuracy in points on the test windows
  (goal <= 1.0), after `fl_rounds` of FedAvg (goal <= 30), and `fl_raw_bytes_uplinked`, the
  bytes of the devices' feature rows found in all they sent (goal 0).

On two busy shared cores it ran in about seven and a half minutes, most of it Flower
starting its app processes: joint inference matched the cloud's accuracy (100%, the device
alone 96.7%) offloading 15% of the windows and sending 0.15 of cloud only's bytes; the live
device offloaded 20.8% of its 120 windows (16.7% computed on its machine's test windows), all
answered by the hub, 1022 bytes each against 1013 computed; the split, cut after conv1 with
11.7% of windows going on, took 0.787 of the device's time for the whole net at the same
accuracy; federated and central training both scored 100% after 10 rounds, with no byte of a
feature row in what the devices sent. The faults at these strengths are easy for every model
but the device's deliberately weak one: the figures hold with margin, and say little about a
harder fleet.

    python benchmarks/collab.py   # a table, then one JSON line
"""

import os

# Before numpy loads: one core, as on a device.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from shared import (
    SPLIT_DEVICE,
    SPLIT_LINK,
    SPLIT_SERVER,
    Windows,
    exits_net,
    federated_vs_central,
    motor_windows,
    skewed_counts,
)

from edgestack.client import HubClient
from edgestack.demo import LocalFleet, wait_until
from edgestack.learning import fit, package
from edgestack.learning.fit import FitResult
from edgestack.learning.split import Link
from edgestack.learning.tradeoff import Choice, SplitNet, TierModel, tradeoff
from edgestack.offload import calibrate, to_offload
from edgestack.predictor import OnnxPredictor
from edgestack.processing import vibration_spec
from edgestack.profiles import PROFILES
from edgestack.protocol import (
    BundleRef,
    DeployRequest,
    DesiredPatch,
    FaultInjection,
    OffloadPolicy,
)
from edgestack.sensing import FAULTS

FLEET = 3  # picks the machines: machine m is simulated motor 1000 * FLEET + m
DEVICES = 3
WINDOWS = 240  # per device: 160 to train, 80 to test
OWN_SHARE = 0.7
SEVERITY = (0.2, 0.4, 0.8)  # of each device's faults
FRACTION = 0.15
EXIT_THRESHOLD = 0.8
JOINT_LINK = Link(bandwidth_bytes_per_s=250e3, rtt_ms=30.0)  # a device's Wi-Fi to the cloud
FL_ROUNDS = 10
LIVE_DEVICE = 1
LIVE_WINDOWS = 40  # windows of each condition the live device classifies under the policy


def _device(machine: int) -> tuple[Windows, Windows]:
    """`machine`'s windows of each condition in its skewed shares: the earlier two thirds of
    each recording to train, the later third to test."""
    train, test = [], []
    for fault, count in enumerate(skewed_counts(machine, WINDOWS, OWN_SHARE)):
        windows = motor_windows(machine, fault, count, seed=FLEET, severity=SEVERITY[machine])
        cut = 2 * count // 3
        train.append(_rows(windows, slice(0, cut)))
        test.append(_rows(windows, slice(cut, None)))
    return Windows.join(train), Windows.join(test)


def _rows(windows: Windows, rows: slice) -> Windows:
    return Windows(windows.features[rows], windows.raw[rows], windows.faults[rows])


def _labels(faults: np.ndarray) -> list[str]:
    return [FAULTS[f] for f in faults]


def _fit(trainer: str, train: Windows, params: dict[str, object]) -> FitResult:
    """`trainer` on the training windows' features, a quarter of them held out to package
    it with."""
    return fit(trainer, train.features, _labels(train.faults), params=params, seed=0)


def _ref(client: HubClient, result: FitResult, name: str) -> BundleRef:
    bundle = package(result, name=name, spec=vibration_spec())
    view = client.register_model(bundle.pack())
    return BundleRef(name=view.name, version=view.version, digest=view.digest)


def _joint(
    small: FitResult, big: FitResult, refs: tuple[BundleRef, BundleRef], test: Windows
) -> list[Choice]:
    device, cloud = (
        TierModel(ref, r.onnx, r.labels, test.features, "features", PROFILES[profile])
        for ref, r, profile in zip(refs, (small, big), ("mcu", "cloud"), strict=True)
    )
    return tradeoff(
        device, cloud, _labels(test.faults), link=JOINT_LINK, fractions=(0.05, 0.1, FRACTION, 0.2)
    )


def _split(train: Windows, test: Windows) -> tuple[list[Choice], str]:
    """Device only, the split and cloud only for the net with an early exit, and where it
    was cut."""
    net = exits_net(train.raw, train.faults, threshold=EXIT_THRESHOLD)
    labels = list(FAULTS)
    whole = net.trainer.to_onnx()
    # The request's size is all the ref is read for: it names the whole net, unregistered.
    ref = BundleRef(name="motor-exits", version=1, digest=hashlib.sha256(whole).hexdigest())
    device, cloud = (
        TierModel(ref, whole, labels, test.raw, "raw", profile)
        for profile in (SPLIT_DEVICE, SPLIT_SERVER)
    )
    split = None
    if 0 < net.plan.at < net.plan.blocks:
        cut = net.trainer.split(net.plan.at, int8_from=net.trained_on)
        split = SplitNet(net.plan, cut.head, cut.tail)
    choices = tradeoff(
        device, cloud, _labels(test.faults), link=SPLIT_LINK, fractions=(), split=split
    )
    return choices, f"after {net.plan.point} (at {net.plan.at} of {net.plan.blocks})"


def _live(fleet: LocalFleet, small: BundleRef, big: BundleRef, threshold: float) -> dict[str, int]:
    """Run the device model with the joint policy on a real device agent until it has
    classified `LIVE_WINDOWS` windows of each condition in turn with the policy on; what its
    telemetry says."""
    client = fleet.client
    device = fleet.devices[0]
    fleet.start_agent(device)
    wait_until(lambda: client.devices(), timeout_s=60, what=f"{device} to enrol")
    client.deploy(DeployRequest(model=small.name, devices=[device]))
    wait_until(
        lambda: (
            (r := client.device(device).reported) is not None
            and r.bundle is not None
            and r.bundle.digest == small.digest
        ),
        timeout_s=120,
        what=f"{device} to run {small.name}",
    )
    policy = OffloadPolicy(
        model=big, target_fraction=FRACTION, threshold=threshold, tier="cloud", timeout_s=5
    )
    since = max([b.id for b in client.telemetry(device, newest_first=True, limit=1)], default=0)
    totals = {"windows": 0, "offloaded": 0, "answered": 0, "fallbacks": 0, "uplink_bytes": 0}

    def counted(windows: int) -> bool:
        nonlocal since
        for view in client.telemetry(device, after_id=since, limit=1000):
            since = view.id
            report = view.batch.offload
            if report is None:  # sent before the policy came
                continue
            totals["windows"] += view.batch.windows
            totals["offloaded"] += report.windows
            totals["answered"] += sum(report.answered.values())
            totals["fallbacks"] += report.fallbacks
            totals["uplink_bytes"] += report.uplink_bytes
        return totals["windows"] >= windows

    for k, fault in enumerate(FAULTS):
        injected = FaultInjection(kind=fault, severity=SEVERITY[LIVE_DEVICE])
        client.update_desired(
            device, DesiredPatch(offload=policy, telemetry_interval_s=1, fault=injected)
        )
        wait_until(
            lambda k=k: counted((k + 1) * LIVE_WINDOWS),
            timeout_s=300,
            what=f"{LIVE_WINDOWS} windows of {fault} classified under the policy",
        )
    # The hub's own sum, over every batch it has stored by now.
    totals["hub_offloaded"] = client.device(device).telemetry.offloaded
    return totals


def _stream_share(small: FitResult, threshold: float, test: Windows) -> float:
    """The share of `test` windows the live policy would offload, each condition weighing
    alike, as in the live stream."""
    predictor = OnnxPredictor(small.onnx, small.labels)
    shares = [
        to_offload(predictor.predict(test.features[test.faults == f])[1], "confidence", threshold)
        for f in range(len(FAULTS))
    ]
    return float(np.mean([share.mean() for share in shares]))


def main() -> None:
    parts = [_device(m) for m in range(DEVICES)]
    train = Windows.join([p[0] for p in parts])
    test = Windows.join([p[1] for p in parts])
    small = _fit("logistic_regression", train, {"c": 0.003})
    big = _fit("random_forest", train, {})
    _, held_out = OnnxPredictor(small.onnx, small.labels).predict(small.test.x)
    threshold = calibrate(held_out, FRACTION, "confidence")

    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        with LocalFleet(
            workdir / "fleet", ["motor-1"], seeds=[1000 * FLEET + LIVE_DEVICE]
        ) as fleet:
            fleet.start_hub()
            refs = _ref(fleet.client, small, "motor-small"), _ref(fleet.client, big, "motor-big")
            joint = _joint(small, big, refs, test)
            live = _live(fleet, *refs, threshold)
        split, cut = _split(train, test)
        devices = [(p[0].features, p[0].faults) for p in parts]
        fl = federated_vs_central(
            devices, test.features, test.faults, rounds=FL_ROUNDS, workdir=workdir
        )

    rows = {c.policy: c for c in joint}
    at = rows[f"joint {FRACTION:.0%} (confidence)"]
    cloud = rows["cloud only"]
    singles = {c.policy: c for c in split}
    split_row = next((c for c in split if c.policy.startswith("split")), None)
    best_single = min(singles["device only"].latency_ms, singles["cloud only"].latency_ms)

    table = Table(
        "policy", "accuracy", "offloaded", "mean ms", "uplink B/window", "energy mJ",
        title=f"{DEVICES} motors, {len(train.faults)} windows to train, {len(test.faults)} to "
        f"test; joint: logistic regression on mcu, forest on cloud, "
        f"{JOINT_LINK.bandwidth_bytes_per_s / 1e3:.0f} kB/s + {JOINT_LINK.rtt_ms:.0f} ms; "
        f"split: cnn1d_exits cut {cut}, mcu and cloud, "
        f"{SPLIT_LINK.bandwidth_bytes_per_s / 1e3:.0f} kB/s + {SPLIT_LINK.rtt_ms:.0f} ms",
    )  # fmt: skip
    for group, choices in (("", joint), ("cnn1d_exits: ", split)):
        for c in choices:
            table.add_row(
                group + c.policy,
                f"{100 * c.accuracy:.1f}%",
                f"{100 * c.offload_fraction:.1f}%",
                f"{c.latency_ms:.2f}",
                f"{c.uplink_bytes:.0f}",
                f"{c.energy_mj:.3f}",
            )
    live_share = live["offloaded"] / live["windows"]
    same_stream = _stream_share(small, threshold, parts[LIVE_DEVICE][1])
    live_bytes = live["uplink_bytes"] / max(1, live["offloaded"])
    table.add_row(
        f"live: joint {FRACTION:.0%}, machine {LIVE_DEVICE} through each condition",
        "",
        f"{100 * live_share:.1f}% (test: {100 * same_stream:.1f}%)",
        "",
        f"{live_bytes:.0f} per offloaded",
        "",
    )
    table.add_row(
        f"federated, {FL_ROUNDS} rounds of FedAvg against central",
        f"{100 * fl.federated_accuracy:.1f}% vs {100 * fl.central_accuracy:.1f}%",
        "", "", f"{fl.uplink_bytes:,} in all", "",
    )  # fmt: skip
    Console(width=120).print(table)
    print(
        json.dumps(
            {
                "joint_acc_vs_cloud": round(at.accuracy / cloud.accuracy, 4),
                "offload_fraction": round(at.offload_fraction, 4),
                "joint_uplink_vs_cloud_only": round(at.uplink_bytes / cloud.uplink_bytes, 4),
                "joint_accuracy": round(at.accuracy, 4),
                "device_accuracy": round(rows["device only"].accuracy, 4),
                "cloud_accuracy": round(cloud.accuracy, 4),
                "live_offload_fraction": round(live_share, 4),
                "computed_offload_fraction_same_stream": round(same_stream, 4),
                "live_windows": live["windows"],
                "live_answered": live["answered"],
                "live_hub_offloaded_total": live["hub_offloaded"],
                "live_fallbacks": live["fallbacks"],
                "live_uplink_bytes_per_offload": round(live_bytes, 1),
                "computed_uplink_bytes_per_offload": round(cloud.uplink_bytes, 1),
                "split_latency_vs_best_single_tier": (
                    round(split_row.latency_ms / best_single, 3) if split_row else None
                ),
                "split_acc_vs_whole": (
                    round(split_row.accuracy / singles["device only"].accuracy, 3)
                    if split_row
                    else None
                ),
                "split_at": cut,
                "split_profile": f"{SPLIT_DEVICE.name} + {SPLIT_SERVER.name}",
                "split_bandwidth_bytes_per_s": SPLIT_LINK.bandwidth_bytes_per_s,
                "split_rtt_ms": SPLIT_LINK.rtt_ms,
                "fl_gap_pts": round(fl.gap_pts, 2),
                "fl_rounds": len(fl.result.history),
                "fl_raw_bytes_uplinked": fl.raw_bytes_uplinked,
                "fl_uplink_bytes": fl.uplink_bytes,
            }
        )
    )


if __name__ == "__main__":
    main()
