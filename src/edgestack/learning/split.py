"""Where to cut a net with an early exit between a device and a server (Neurosurgeon-style):
the split that minimises the expected end-to-end latency per window, from each block's
latency, the tensor each split would send, the link, and the share of windows the exit
answers on the device.

    plan = choose_split(
        SplitCosts(layers=layers, input_bytes=512, exit_after=2, exit_ms=0.02),
        device_speed=PROFILES["pi"].speed_factor,
        server_speed=PROFILES["cloud"].speed_factor,
        link=Link(bandwidth_bytes_per_s=1e6, rtt_ms=20),
        threshold=0.9,
        early_share=0.8,
    )
    plan.at, plan.expected_ms, plan.offload_bytes
"""

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgestack.bundle import SplitPlan
from edgestack.learning.zoo.exits import Block, Cnn1dExits
from edgestack.predictor import onnx_session
from edgestack.profiles import DeviceProfile

__all__ = [
    "Layer",
    "Link",
    "SplitCosts",
    "choose_split",
    "early_share",
    "measure_costs",
    "median_ms",
    "plan_split",
]

_WARM_UP = 10


@dataclass(frozen=True)
class Layer:
    """One block of a net: its latency on the reference machine (ONNX Runtime, one thread,
    batch 1, as `Footprint` measures) and the bytes of its output for one window, what a
    split right after it sends."""

    name: str
    ms: float
    out_bytes: int


@dataclass(frozen=True)
class Link:
    """The network between the device and the server."""

    bandwidth_bytes_per_s: float
    rtt_ms: float


@dataclass(frozen=True)
class SplitCosts:
    """What a net costs, block by block: `layers` in order, the window's own bytes (what
    `at` 0 sends), the exit classifier reading the output of the first `exit_after` layers,
    and that exit's reference latency."""

    layers: Sequence[Layer]
    input_bytes: int
    exit_after: int
    exit_ms: float


def early_share(exit_probabilities: np.ndarray, threshold: float) -> float:
    """The share of windows whose exit's top probability is at least `threshold`: those the
    device answers alone."""
    top = np.asarray(exit_probabilities).max(axis=1)
    return float(np.mean(top >= threshold)) if len(top) else 0.0


def measure_costs(
    blocks: Sequence[Block], exit_after: int, *, int8: bool = False, runs: int = 100
) -> SplitCosts:
    """The `blocks` of a net (`Cnn1dExits.blocks()`: in order, then the exit, which reads the
    output of the first `exit_after`) timed alone with ONNX Runtime on this machine, the
    reference machine of the device profiles (one thread, batch 1, the median of `runs`
    calls), with the bytes each split would send: an int8 tensor under `int8`
    (`Cnn1dExits.split(at, int8_from=...)`), float32 otherwise."""
    per_value = 1 if int8 else 4
    *layered, exit_block = blocks
    layers = [
        Layer(b.name, median_ms(b.onnx, b.takes, runs), per_value * math.prod(b.gives))
        for b in layered
    ]
    return SplitCosts(
        layers=layers,
        input_bytes=4 * math.prod(layered[0].takes),
        exit_after=exit_after,
        exit_ms=median_ms(exit_block.onnx, exit_block.takes, runs),
    )


def plan_split(
    trainer: Cnn1dExits,
    held_out: np.ndarray,
    *,
    device: DeviceProfile,
    server: DeviceProfile,
    link: Link,
    threshold: float,
    int8: bool = False,
) -> SplitPlan:
    """Where to cut `trainer`'s net between a `device` and a `server` of these profiles:
    its blocks measured here, the share of the `held_out` rows its exit answers at
    `threshold`, and `choose_split`."""
    if not len(held_out):
        raise ValueError("held_out: no rows; give windows the net did not train on")
    return choose_split(
        measure_costs(trainer.blocks(), trainer.exit_after, int8=int8),
        device_speed=device.speed_factor,
        server_speed=server.speed_factor,
        link=link,
        threshold=threshold,
        early_share=early_share(trainer.exit_proba(held_out), threshold),
    )


_DTYPES = {"tensor(int8)": np.int8, "tensor(uint8)": np.uint8}


def median_ms(model: bytes, takes: tuple[int, ...], runs: int) -> float:
    """Median milliseconds per call of `model` on one zero window of shape `takes`. In
    process, unlike the optimiser's probe, which scores a classifier's accuracy too and a
    block has none; and these graphs are too small for an arena left by the one before to
    matter."""
    session = onnx_session(model)
    given = session.get_inputs()[0]
    # A tail behind an int8 tensor takes int8; every other graph here takes float32.
    zeros = np.zeros((1, *takes), dtype=_DTYPES.get(given.type, np.float32))
    feed = {given.name: zeros}
    for _ in range(_WARM_UP):
        session.run(None, feed)
    took = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter_ns()
        session.run(None, feed)
        took[i] = time.perf_counter_ns() - start
    return float(np.median(took)) / 1e6


def choose_split(
    costs: SplitCosts,
    *,
    device_speed: float,
    server_speed: float,
    link: Link,
    threshold: float,
    early_share: float,
) -> SplitPlan:
    """The split with the lowest expected latency per window; ties go to fewer bytes sent.

    The candidates are what `package_split` makes. A split after `at` blocks (from
    `exit_after` on: a head always carries the exit, or it answers nothing early and only
    moves work) runs its head, those blocks and the exit in one call, on the device,
    `device_speed` times slower than the reference machine (a profile's `speed_factor`);
    the share of windows the exit is not sure of, `1 - early_share`, pay the round trip, the
    tensor's transfer and the rest of the net on a server `server_speed` times slower. `at`
    0 sends every window whole to the server; `at` all blocks runs the whole net on the
    device, exit-less.
    """
    _check(costs, device_speed, server_speed, link, threshold, early_share)
    n = len(costs.layers)
    expected = {
        at: _expected_ms(costs, at, device_speed, server_speed, link, early_share)
        for at in (0, *range(costs.exit_after, n + 1))
    }
    at = min(expected, key=lambda a: (expected[a], _sent(costs, a)))
    return SplitPlan(
        at=at,
        blocks=n,
        point=costs.layers[at - 1].name if at else "input",
        threshold=threshold,
        early_share=early_share,
        expected_ms=expected[at],
        offload_bytes=_sent(costs, at),
    )


def _sent(costs: SplitCosts, at: int) -> int:
    if at == len(costs.layers):
        return 0
    return costs.input_bytes if at == 0 else costs.layers[at - 1].out_bytes


def _expected_ms(
    costs: SplitCosts,
    at: int,
    device_speed: float,
    server_speed: float,
    link: Link,
    share: float,
) -> float:
    ms = [layer.ms for layer in costs.layers]
    if at == len(ms):
        return sum(ms) * device_speed
    transfer = 1000 * _sent(costs, at) / link.bandwidth_bytes_per_s
    offloaded = link.rtt_ms + transfer + sum(ms[at:]) * server_speed
    if at == 0:
        return offloaded
    head = (sum(ms[:at]) + costs.exit_ms) * device_speed
    return head + (1 - share) * offloaded


def _check(
    costs: SplitCosts,
    device_speed: float,
    server_speed: float,
    link: Link,
    threshold: float,
    share: float,
) -> None:
    """A `ValueError` naming the first input that cannot be costed, and what to give."""
    if not costs.layers:
        raise ValueError("layers: empty; give each block of the net, measured, in order")
    checks = [
        *(
            (f"layers[{i}].ms", layer.ms, _at_least_0, "its measured latency in ms, 0 or more")
            for i, layer in enumerate(costs.layers)
        ),
        *(
            (f"layers[{i}].out_bytes", layer.out_bytes, _at_least_0, "its output's bytes")
            for i, layer in enumerate(costs.layers)
        ),
        ("input_bytes", costs.input_bytes, _at_least_0, "a window's bytes, 0 or more"),
        ("exit_ms", costs.exit_ms, _at_least_0, "the exit's latency in ms, 0 or more"),
        ("device_speed", device_speed, _above_0, "the device profile's speed_factor, above 0"),
        ("server_speed", server_speed, _above_0, "the server's speed factor, above 0"),
        (
            "link.bandwidth_bytes_per_s",
            link.bandwidth_bytes_per_s,
            _above_0,
            "the link's bandwidth in bytes per second, above 0",
        ),
        ("link.rtt_ms", link.rtt_ms, _at_least_0, "the link's round trip in ms, 0 or more"),
        ("threshold", threshold, _share, "an exit confidence from 0 to 1"),
        ("early_share", share, _share, "the share of windows leaving at the exit, 0 to 1"),
    ]
    for name, value, fits, fix in checks:
        if not fits(value):
            raise ValueError(f"{name}: {value}; give {fix}")
    if not 1 <= costs.exit_after <= len(costs.layers):
        raise ValueError(
            f"exit_after: {costs.exit_after}; give the number of layers before the exit, "
            f"1 to {len(costs.layers)}"
        )


def _at_least_0(value: float) -> bool:
    return 0 <= value < math.inf


def _above_0(value: float) -> bool:
    return 0 < value < math.inf


def _share(value: float) -> bool:
    return 0 <= value <= 1
