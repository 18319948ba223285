"""What each way of sharing inference between a device and a server costs and gains, measured on
held-out windows: accuracy, latency, uplink bytes and the device's energy per window, for the
device alone, joint inference at several offload fractions, a split net, and the server alone.

Latencies are the models' own, timed here with ONNX Runtime as a device runs them and scaled by
each tier's profile; the link adds its round trip and the bytes' time on the wire, counted as
the request the device would send. Energy is an estimate from stated assumptions (`Energy`).

    rows = tradeoff(device, cloud, truth, link=Link(bandwidth_bytes_per_s=250e3, rtt_ms=30))
    for row in rows: print(row.policy, row.accuracy, row.latency_ms, row.uplink_bytes)
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgestack.bundle import SplitPlan
from edgestack.learning.split import Link, median_ms
from edgestack.offload import calibrate, to_offload
from edgestack.predictor import OnnxPredictor, onnx_session
from edgestack.profiles import DeviceProfile
from edgestack.protocol import BundleRef, OffloadGate, RowsKind
from edgestack.serving import offload_request

__all__ = ["Choice", "Energy", "SplitNet", "TierModel", "tradeoff"]

_RUNS = 200


@dataclass(frozen=True)
class Energy:
    """The assumptions of the energy estimate: the device's power while it computes, and what
    its radio spends per byte sent (Wi-Fi-class by default; a cellular modem spends more)."""

    device_w: float = 3.0
    radio_nj_per_byte: float = 100.0

    def mj(self, compute_ms: float, sent_bytes: float) -> float:
        """Millijoules for `compute_ms` of the device's work and `sent_bytes` on its radio."""
        return compute_ms * self.device_w + sent_bytes * self.radio_nj_per_byte * 1e-6


@dataclass(frozen=True)
class TierModel:
    """A model on one tier: its ONNX graph and labels, the held-out rows in the form it takes
    (window features, or raw windows), and the tier's profile, whose speed scales the
    latency timed here."""

    ref: BundleRef
    onnx: bytes
    labels: Sequence[str]
    rows: np.ndarray
    input: RowsKind
    profile: DeviceProfile


@dataclass(frozen=True)
class SplitNet:
    """A net cut by `plan`: the device's head (outputs the exit's probabilities and the
    intermediate tensor) and the server's tail (takes that tensor). `rows` are the held-out
    windows as the head takes them, when not as the device's model does."""

    plan: SplitPlan
    head: bytes
    tail: bytes
    rows: np.ndarray | None = None


@dataclass(frozen=True)
class Choice:
    """One way to answer, per window on average: `accuracy` on the measured windows, the
    `offload_fraction` of them a server answered, end-to-end `latency_ms`, `uplink_bytes`
    the device sent and `energy_mj` it spent."""

    policy: str
    accuracy: float
    offload_fraction: float
    latency_ms: float
    uplink_bytes: float
    energy_mj: float


def tradeoff(
    device: TierModel,
    cloud: TierModel,
    truth: Sequence[str],
    *,
    link: Link,
    fractions: Sequence[float] = (0.05, 0.1, 0.2, 0.5),
    gate: OffloadGate = "confidence",
    split: SplitNet | None = None,
    energy: Energy = Energy(),
) -> list[Choice]:
    """Device only, joint inference at each of `fractions`, the `split` net where one is
    given, and cloud only, on the held-out windows whose true labels are `truth`.

    Joint inference calibrates its threshold on every other window and is measured on the
    rest, as a device calibrated on held-out windows meets new ones; every policy is measured
    on those same windows."""
    _check(device, cloud, truth, fractions, link, split)
    truth_all = np.asarray(truth)
    calibration, measured = slice(0, None, 2), slice(1, None, 2)
    mine = _probabilities(device)
    theirs = _probabilities(cloud)
    right_mine = np.asarray(device.labels)[mine.argmax(axis=1)] == truth_all
    right_theirs = np.asarray(cloud.labels)[theirs.argmax(axis=1)] == truth_all
    device_ms = _ms(device.onnx, device.rows, device.profile)
    sent = _request_bytes(cloud)
    trip_ms = _wire_ms(link, sent) + _ms(cloud.onnx, cloud.rows, cloud.profile)

    choices = [
        Choice(
            "device only",
            float(right_mine[measured].mean()),
            0.0,
            device_ms,
            0.0,
            energy.mj(device_ms, 0),
        )
    ]
    for fraction in fractions:
        threshold = calibrate(mine[calibration], fraction, gate)
        going = to_offload(mine[measured], gate, threshold)
        share = float(going.mean())
        right = np.where(going, right_theirs[measured], right_mine[measured])
        choices.append(
            Choice(
                f"joint {fraction:.0%} ({gate})",
                float(right.mean()),
                share,
                device_ms + share * trip_ms,
                share * sent,
                energy.mj(device_ms, share * sent),
            )
        )
    if split is not None:
        choices.append(_split(split, device, cloud, truth_all[measured], measured, link, energy))
    choices.append(
        Choice(
            "cloud only",
            float(right_theirs[measured].mean()),
            1.0,
            trip_ms,
            float(sent),
            energy.mj(0, sent),
        )
    )
    return choices


def _probabilities(model: TierModel) -> np.ndarray:
    _, probabilities = OnnxPredictor(model.onnx, model.labels).predict(model.rows)
    return probabilities


def _request_bytes(model: TierModel) -> int:
    """The bytes of the request that offloads one window, as the device would send it."""
    return len(offload_request(model.ref, model.input, model.rows[:1].reshape(1, -1)))


def _split(
    net: SplitNet,
    device: TierModel,
    cloud: TierModel,
    truth: np.ndarray,
    measured: slice,
    link: Link,
    energy: Energy,
) -> Choice:
    """The split net on the measured windows: the head and its exit on the device, the tail on
    the server (at the cloud's speed) for the windows the exit is not sure of."""
    head, tail = onnx_session(net.head), onnx_session(net.tail)
    given = device.rows if net.rows is None else net.rows
    rows = np.ascontiguousarray(given[measured], dtype=np.float32)
    exit_probabilities, intermediate = head.run(None, {head.get_inputs()[0].name: rows})
    early = exit_probabilities.max(axis=1) >= net.plan.threshold
    (tail_probabilities,) = tail.run(None, {tail.get_inputs()[0].name: intermediate})
    answers = np.where(early, exit_probabilities.argmax(axis=1), tail_probabilities.argmax(axis=1))
    share = float(1 - early.mean())
    head_ms = _ms(net.head, given, device.profile)
    tail_ms = median_ms(net.tail, intermediate.shape[1:], _RUNS) * cloud.profile.speed_factor
    trip_ms = _wire_ms(link, net.plan.offload_bytes) + tail_ms
    return Choice(
        f"split after {net.plan.point}",
        float((np.asarray(device.labels)[answers] == truth).mean()),
        share,
        head_ms + share * trip_ms,
        share * net.plan.offload_bytes,
        energy.mj(head_ms, share * net.plan.offload_bytes),
    )


def _ms(model: bytes, rows: np.ndarray, profile: DeviceProfile) -> float:
    """`model`'s latency per window on `profile`'s tier."""
    return median_ms(model, rows.shape[1:], _RUNS) * profile.speed_factor


def _wire_ms(link: Link, sent: float) -> float:
    return link.rtt_ms + sent / link.bandwidth_bytes_per_s * 1000


def _check(
    device: TierModel,
    cloud: TierModel,
    truth: Sequence[str],
    fractions: Sequence[float],
    link: Link,
    split: SplitNet | None,
) -> None:
    given = [("device", device.rows), ("cloud", cloud.rows)]
    if split is not None and split.rows is not None:
        given.append(("split", split.rows))
    for name, rows in given:
        if len(rows) != len(truth):
            raise ValueError(
                f"{name}.rows: {len(rows)} rows for {len(truth)} labels; give one row "
                "per held-out window, in the same order"
            )
    if len(truth) < 2:
        raise ValueError("truth: fewer than 2 held-out windows; half calibrate, half measure")
    for i, fraction in enumerate(fractions):
        if not 0 < fraction <= 1:
            raise ValueError(f"fractions[{i}]: {fraction} is no share of windows; give (0, 1]")
    if not link.bandwidth_bytes_per_s > 0 or not link.rtt_ms >= 0:
        raise ValueError(
            f"link: {link.bandwidth_bytes_per_s} bytes/s and {link.rtt_ms} ms; give a bandwidth "
            "above 0 and a round trip of 0 or more"
        )
