"""What every simulated sensor shares: reproducibility, defects, faults and parameter checks."""

from typing import Any

import numpy as np
import pytest

from edgestack.sensing import SENSOR_FAULTS, SOURCES, Defects
from edgestack.sensing.simulated._base import Simulator

# Small frames keep the camera as quick to test as the others.
PARAMS: dict[str, dict[str, Any]] = {
    "audio": {},
    "camera": {"height": 8, "width": 10},
    "colour": {},
    "imu": {"activity": "walk"},
    "light": {"start": 12 * 3600.0},
    "ranger": {},
    "vehicle": {},
    "weather": {},
}
NAMES = sorted(PARAMS)
CLEAN = {"noise": 0.0, "dropout": 0.0, "outliers": 0.0, "drift": 0.0}


def _build(name: str, seed: int = 5, **changes: Any) -> Simulator:
    source: Simulator = SOURCES.build(name, {"seed": seed, "start": 0.0, **PARAMS[name], **changes})
    return source


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


@pytest.mark.parametrize("name", NAMES)
def test_any_chunking_gives_the_same_bytes_through_events_and_faults(name: str) -> None:
    chunked, whole = _build(name), _build(name)
    event = chunked.events[-1]
    sizes = [int(s) for s in np.random.default_rng(1).integers(0, 3 * whole.rate_hz, size=8)]
    before, after = sum(sizes[:4]), sum(sizes[4:])

    pieces = [chunked.read(n).data for n in sizes[:4]]
    chunked.inject(event, 0.8)
    chunked.inject("drift", 0.5)
    pieces += [chunked.read(n).data for n in sizes[4:]]
    first = whole.read(before).data
    whole.inject(event, 0.8)
    whole.inject("drift", 0.5)
    reference = np.concatenate([first, whole.read(after).data], axis=1)

    assert _same(np.concatenate(pieces, axis=1), reference)


@pytest.mark.parametrize("name", NAMES)
def test_seeds_are_different_sensors_and_times_follow_the_samples(name: str) -> None:
    one, other = _build(name, seed=1), _build(name, seed=2)
    n = round(2 * one.rate_hz)

    a, b = one.read(n), other.read(n)
    c = one.read(3)

    assert not _same(a.data, b.data)
    assert c.t0 - a.t0 == pytest.approx(n / one.rate_hz)


@pytest.mark.parametrize("name", NAMES)
def test_dropouts_and_outliers_come_at_about_the_requested_rate(name: str) -> None:
    plain = _build(name, defects={"dropout": 0.0, "outliers": 0.0})
    flawed = _build(name, defects={"dropout": 0.05, "outliers": 0.02})
    n = 4000

    clean, data = plain.read(n).data, flawed.read(n).data

    missing = np.isnan(data).reshape(data.shape[0], n, -1).all(axis=(0, 2))
    present = ~missing
    changed = clean[:, present] != data[:, present]
    assert np.isnan(data).any(axis=0).reshape(n, -1).any(axis=1).sum() == missing.sum()
    assert missing.mean() == pytest.approx(0.05, abs=0.015)
    # A spike past the sensor's range is clipped; a ranger at max range hides the upward half.
    assert 0.4 * 0.02 <= changed.mean() <= 1.3 * 0.02


def test_noise_scales_with_its_parameter() -> None:
    clean = _build("imu", defects=CLEAN).read(5000).data
    noisy = _build("imu", defects={**CLEAN, "noise": 2.0}).read(5000).data

    spread = (noisy - clean).std(axis=1)

    assert spread[:3] == pytest.approx([0.02] * 3, rel=0.1)  # accelerometer: 0.01 g nominal
    assert spread[3:] == pytest.approx([1.0] * 3, rel=0.1)  # gyroscope: 0.5 deg/s nominal


def test_drift_grows_by_its_share_of_the_span_per_hour() -> None:
    steady = _build("weather", defects=CLEAN).read(3600).data
    drifting = _build("weather", defects={**CLEAN, "drift": 0.1}).read(3600).data

    offset = np.abs(drifting - steady)

    assert offset[0, -1] == pytest.approx(0.1 * 50.0, rel=0.01)  # pressure span 50 hPa
    assert offset[1, -1] == pytest.approx(0.1 * 40.0, rel=0.01)  # temperature span 40 degC
    assert offset[0, 1800] == pytest.approx(offset[0, -1] / 2, rel=0.01)


@pytest.mark.parametrize("name", NAMES)
def test_a_stuck_sensor_repeats_one_reading_until_made_normal(name: str) -> None:
    source = _build(name)
    n = max(round(3 * source.rate_hz), 20)
    source.read(n)

    source.inject("stuck")
    stuck = source.read(n).data
    source.inject("normal")
    healthy = source.read(n).data

    # One row per sample, a whole frame for a camera.
    for channel in stuck.reshape(len(source.channels), n, -1):
        samples = channel[~np.isnan(channel).any(axis=1)]
        assert (samples == samples[0]).all()
    assert source.fault == "normal"
    for channel in healthy.reshape(len(source.channels), n, -1):
        samples = channel[~np.isnan(channel).any(axis=1)]
        assert not (samples == samples[0]).all()


@pytest.mark.parametrize("name", NAMES)
def test_a_dead_channel_reads_one_constant_and_the_others_live_on(name: str) -> None:
    source = _build(name, defects={"dropout": 0.0, "outliers": 0.0})
    n = max(round(3 * source.rate_hz), 20)
    source.inject("dead")

    data = source.read(n).data.reshape(len(source.channels), n, -1)

    constant = [bool((c == c.flat[0]).all()) for c in data]
    assert sum(constant) == 1


@pytest.mark.parametrize("name", NAMES)
def test_a_drift_fault_shifts_every_channel(name: str) -> None:
    steady, faulty = _build(name, defects=CLEAN), _build(name, defects=CLEAN)
    faulty.inject("drift", severity=0.2)
    n = 50

    shift = (faulty.read(n).data - steady.read(n).data).reshape(len(steady.channels), -1)

    assert (np.abs(shift).max(axis=1) > 0).all()


def test_a_drift_fault_shifts_by_a_tenth_of_the_span_at_severity_one() -> None:
    steady, faulty = _build("weather", defects=CLEAN), _build("weather", defects=CLEAN)
    faulty.inject("drift", severity=0.5)

    shift = np.abs(faulty.read(10).data - steady.read(10).data)

    assert shift[0] == pytest.approx(np.full(10, 0.05 * 50.0), rel=1e-3)  # span 50 hPa
    assert shift[1] == pytest.approx(np.full(10, 0.05 * 40.0), rel=1e-3)  # span 40 degC


@pytest.mark.parametrize("name", NAMES)
def test_unknown_kinds_and_bad_severities_are_refused_with_the_valid_ones(name: str) -> None:
    source = _build(name)

    with pytest.raises(ValueError, match="valid kinds: normal") as unknown:
        source.inject("meteor")
    with pytest.raises(ValueError, match="severity"):
        source.inject(source.events[0], severity=float("nan"))

    assert all(kind in str(unknown.value) for kind in (*source.events, *SENSOR_FAULTS))
    assert source.kinds == ("normal", *source.events, *SENSOR_FAULTS)


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("imu", {"rate_hz": -5}, "rate_hz"),
        ("imu", {"activity": "swim"}, "activity"),
        ("camera", {"height": 2}, "height"),
        ("weather", {"time_scale": 0}, "time_scale"),
        ("vehicle", {"latitude": 95}, "latitude"),
        ("audio", {"defects": {"dropout": 2}}, "defects.dropout"),
        ("light", {"defects": {"noisy": 1}}, "defects.noisy"),
        ("ranger", {"min_range_m": 5.0, "max_range_m": 4.0}, "max_range_m"),
        ("colour", {"seed": "blue"}, "seed"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(
    name: str, params: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        SOURCES.build(name, {"seed": 1, **params})


@pytest.mark.parametrize("name", ["imu", "motor"])
def test_a_source_given_no_seed_is_seed_0(name: str) -> None:
    unseeded = SOURCES.build(name, {"start": 0.0})
    zero = SOURCES.build(name, {"seed": 0, "start": 0.0})
    one = SOURCES.build(name, {"seed": 1, "start": 0.0})

    data = unseeded.read(64).data

    np.testing.assert_array_equal(data, zero.read(64).data)
    assert not np.array_equal(data, one.read(64).data)


def test_defects_default_to_a_little_of_everything() -> None:
    defects = Defects()

    assert defects.noise == 1.0
    assert 0 < defects.dropout < 0.01
    assert 0 < defects.outliers < 0.01
    assert 0 < defects.drift < 0.1
