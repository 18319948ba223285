import pytest

from edgestack.bundle import Footprint
from edgestack.profiles import PROFILES, profile_for
from edgestack.protocol import Hardware

MB = 1024 * 1024


def _footprint(*, model_mb: float = 1, ram_mb: float = 8, p99_ms: float = 0.5) -> Footprint:
    return Footprint(
        model_bytes=int(model_mb * MB),
        peak_ram_bytes=int(ram_mb * MB),
        latency_ms_p50=p99_ms / 2,
        latency_ms_p99=p99_ms,
    )


def test_a_model_within_every_budget_fits() -> None:
    footprint = _footprint()

    reasons = PROFILES["pi"].refuses(footprint)

    assert reasons == []


@pytest.mark.parametrize(
    ("footprint", "reason"),
    [
        (_footprint(model_mb=80), "model is 80.00 MB, profile pi holds 64.00 MB"),
        (_footprint(ram_mb=300), "model needs 300.0 MB of RAM, profile pi allows 256.0 MB"),
        (
            _footprint(p99_ms=4),
            "model takes about 24.00 ms per window (p99) on pi, the budget is 20.00 ms",
        ),
    ],
)
def test_each_budget_overrun_is_one_reason_with_both_numbers(
    footprint: Footprint, reason: str
) -> None:
    reasons = PROFILES["pi"].refuses(footprint)

    assert reasons == [reason]


def test_every_overrun_is_named() -> None:
    footprint = _footprint(model_mb=2, ram_mb=1, p99_ms=2)

    reasons = PROFILES["mcu"].refuses(footprint)

    assert len(reasons) == 3


def test_latency_scales_by_the_speed_factor_of_the_profile() -> None:
    # 4 ms on the reference machine: 4 on cloud, 6 on an ipc, 24 on a pi, 160 on an mcu.
    footprint = _footprint(model_mb=0.1, ram_mb=0.1, p99_ms=4)

    verdicts = {name: profile.refuses(footprint) for name, profile in PROFILES.items()}

    assert verdicts["cloud"] == [] and verdicts["ipc"] == []
    assert verdicts["pi"] == [
        "model takes about 24.00 ms per window (p99) on pi, the budget is 20.00 ms"
    ]
    assert verdicts["mcu"] == [
        "model takes about 160.00 ms per window (p99) on mcu, the budget is 50.00 ms"
    ]


@pytest.mark.parametrize(
    ("ram_mb", "arch", "profile"),
    [
        (256, "armv7l", "mcu"),
        (2048, "aarch64", "pi"),
        (16 * 1024, "aarch64", "pi"),
        (4096, "x86_64", "pi"),
        (16 * 1024, "x86_64", "ipc"),
        (16 * 1024, "AMD64", "ipc"),
    ],
)
def test_a_device_is_put_in_the_smallest_profile_its_hardware_reaches(
    ram_mb: int, arch: str, profile: str
) -> None:
    hardware = Hardware(cores=4, ram_mb=ram_mb, arch=arch, providers=["CPUExecutionProvider"])

    chosen = profile_for(hardware)

    assert chosen.name == profile
