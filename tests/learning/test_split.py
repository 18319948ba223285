import dataclasses
from typing import Any

import numpy as np
import pytest

from edgestack.learning.split import Layer, Link, SplitCosts, choose_split, early_share
from edgestack.profiles import PROFILES

# A raw window is large, the first block's output larger still; the second block pools it
# down to a small (int8) tensor; the third block is the costly one.
COSTS = SplitCosts(
    layers=[
        Layer("conv1", ms=1.0, out_bytes=8192),
        Layer("conv2", ms=2.0, out_bytes=512),
        Layer("conv3", ms=4.0, out_bytes=512),
        Layer("classifier", ms=0.1, out_bytes=8),
    ],
    input_bytes=40960,
    exit_after=2,
    exit_ms=0.1,
)
PI = PROFILES["pi"].speed_factor
CLOUD = PROFILES["cloud"].speed_factor
CHOICE: dict[str, Any] = {
    "device_speed": PI,
    "server_speed": CLOUD,
    "link": Link(bandwidth_bytes_per_s=1e6, rtt_ms=5.0),
    "threshold": 0.9,
    "early_share": 0.8,
}


def test_a_very_slow_link_keeps_everything_on_the_device() -> None:
    plan = choose_split(COSTS, **(CHOICE | {"link": Link(1e3, rtt_ms=500.0)}))

    assert plan.at == plan.blocks == 4
    assert plan.offload_bytes == 0
    assert plan.point == "classifier"


def test_a_very_slow_device_on_a_fast_link_sends_the_window_to_the_server() -> None:
    plan = choose_split(COSTS, **(CHOICE | {"device_speed": 1000.0, "link": Link(1e9, rtt_ms=0.5)}))

    assert plan.at == 0 and plan.point == "input"
    assert plan.offload_bytes == COSTS.input_bytes
    assert plan.expected_ms == pytest.approx(0.5 + 1000 * 40960 / 1e9 + 7.1 * CLOUD)


def test_in_between_the_split_falls_after_the_exit_where_the_tensor_is_small() -> None:
    plan = choose_split(COSTS, **CHOICE)

    assert (plan.at, plan.point, plan.offload_bytes) == (2, "conv2", 512)
    head = 3.0 * PI + 0.1 * PI  # two blocks and the exit, on the device
    rest = 5.0 + 1000 * 512 / 1e6 + 4.1 * CLOUD  # round trip, transfer, the server's part
    assert plan.expected_ms == pytest.approx(head + 0.2 * rest)
    assert (plan.threshold, plan.early_share) == (0.9, 0.8)


def test_no_window_leaving_early_sends_them_all_whole() -> None:
    small_window = dataclasses.replace(COSTS, input_bytes=512)
    link = Link(1e6, rtt_ms=30.0)

    sure = choose_split(small_window, **(CHOICE | {"link": link}))
    unsure = choose_split(small_window, **(CHOICE | {"link": link, "early_share": 0.0}))

    assert sure.at == 2
    assert unsure.at == 0
    assert unsure.expected_ms > sure.expected_ms


def test_a_head_always_carries_the_exit() -> None:
    # Sending conv1's output would be cheapest were the exit not needed on the device.
    costly_exit = dataclasses.replace(COSTS, exit_ms=1000.0)

    plan = choose_split(costly_exit, **CHOICE)

    assert plan.at == 4
    assert plan.expected_ms == pytest.approx(7.1 * PI)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"link": Link(-5.0, rtt_ms=1.0)}, r"link\.bandwidth_bytes_per_s: -5\.0; give the link's"),
        ({"link": Link(1e6, rtt_ms=-1.0)}, r"link\.rtt_ms: -1\.0"),
        ({"device_speed": 0.0}, r"device_speed: 0\.0; give the device profile's speed_factor"),
        ({"early_share": 1.5}, r"early_share: 1\.5; give the share"),
        ({"threshold": float("nan")}, r"threshold: nan"),
        ({"costs": dataclasses.replace(COSTS, layers=[])}, r"layers: empty; give each block"),
        (
            {"costs": dataclasses.replace(COSTS, layers=[Layer("a", -1.0, 4), Layer("b", 1, 4)])},
            r"layers\[0\]\.ms: -1\.0",
        ),
        ({"costs": dataclasses.replace(COSTS, exit_after=0)}, r"exit_after: 0; .* 1 to 4"),
    ],
)
def test_inputs_that_cannot_be_costed_are_refused_naming_the_field(
    change: dict[str, Any], message: str
) -> None:
    given = CHOICE | {"costs": COSTS} | change

    with pytest.raises(ValueError, match=message):
        choose_split(**given)


def test_the_early_share_counts_windows_at_or_above_the_threshold() -> None:
    probabilities = np.array([[0.95, 0.05], [0.6, 0.4], [0.1, 0.9], [0.5, 0.5]])

    assert early_share(probabilities, 0.9) == 0.5
    assert early_share(probabilities, 0.99) == 0.0
    assert early_share(probabilities[:0], 0.9) == 0.0
