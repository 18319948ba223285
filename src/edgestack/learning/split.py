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
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgestack.bundle import SplitPlan

__all__ = ["Layer", "Link", "SplitCosts", "choose_split", "early_share"]


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

    A split after `at` blocks runs them on the device, `device_speed` times slower than the
    reference machine (a profile's `speed_factor`), and the rest on a server `server_speed`
    times slower. With the exit on the device (`at` at least `exit_after`), `early_share` of
    the windows stop there; the others pay the round trip, the tensor's transfer and the
    server's part. Below `exit_after` every window goes on, the exit unused.
    """
    _check(costs, device_speed, server_speed, link, threshold, early_share)
    n = len(costs.layers)
    expected = [
        _expected_ms(costs, at, device_speed, server_speed, link, early_share)
        for at in range(n + 1)
    ]
    at = min(range(n + 1), key=lambda a: (expected[a], _sent(costs, a)))
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
    on_device = sum(ms[:at]) * device_speed
    offloaded = 0.0
    if at < len(ms):
        transfer = 1000 * _sent(costs, at) / link.bandwidth_bytes_per_s
        offloaded = link.rtt_ms + transfer + sum(ms[at:]) * server_speed
    if at < costs.exit_after:
        return on_device + offloaded
    exit_ms = costs.exit_ms * device_speed
    early = sum(ms[: costs.exit_after]) * device_speed + exit_ms
    return share * early + (1 - share) * (on_device + exit_ms + offloaded)


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
