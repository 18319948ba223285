import numpy as np
import pytest

from edgestack.sensing import FAULTS, Chunk, MotorSimulator

RATE = 8000.0
SEEDS = range(1, 7)


def _amplitude(signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hann-windowed amplitude spectrum and its frequencies."""
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(signal.shape[-1]), axis=-1))
    return np.fft.rfftfreq(signal.shape[-1], 1 / RATE), spectrum


def _kurtosis(signal: np.ndarray) -> float:
    centred = signal - signal.mean()
    return float(np.mean(centred**4) / np.mean(centred**2) ** 2)


def _healthy_and_faulty(seed: int, fault: str, seconds: float) -> tuple[Chunk, Chunk, float]:
    """The same machine over the same stretch, without and with `fault`; and its final speed."""
    healthy = MotorSimulator(seed, start=0.0)
    faulty = MotorSimulator(seed, start=0.0)
    faulty.inject(fault)
    samples = round(seconds * RATE)
    return healthy.read(samples), faulty.read(samples), faulty.shaft_hz


def test_two_reads_equal_one_read_of_both() -> None:
    first = MotorSimulator(7, start=100.0)
    whole = MotorSimulator(7, start=100.0)

    a, b = first.read(100), first.read(100)
    both = whole.read(200)

    assert np.array_equal(np.hstack([a.data, b.data]), both.data)
    assert b.t0 == 100.0 + 100 / RATE


def test_any_chunking_gives_the_same_samples_across_regimes_and_faults() -> None:
    rng = np.random.default_rng(0)
    sizes = [int(s) for s in rng.integers(0, 9000, size=50)]  # ~60 s, many regime changes
    chunked, whole = MotorSimulator(3, start=0.0), MotorSimulator(3, start=0.0)
    chunked.inject("bearing_wear", 0.8)
    whole.inject("bearing_wear", 0.8)

    pieces = [chunked.read(size).data for size in sizes]
    reference = whole.read(sum(sizes)).data

    assert np.array_equal(np.hstack(pieces), reference)


def test_a_chunk_describes_its_channels() -> None:
    chunk = MotorSimulator(1, start=5.0).read(400)

    assert chunk.channels == ("accel_x", "accel_y", "accel_z", "temperature")
    assert chunk.units == ("g", "g", "g", "degC")
    assert chunk.data.dtype == np.float32
    assert chunk.data.shape == (4, 400)
    assert (chunk.n, chunk.nbytes, chunk.t0, chunk.rate_hz) == (400, 4 * 400 * 4, 5.0, RATE)
    assert np.isfinite(chunk.data).all()


def test_a_chunk_refuses_data_that_does_not_match_its_channels() -> None:
    with pytest.raises(ValueError, match="one row per channel"):
        Chunk(0.0, RATE, ("a", "b"), ("g", "g"), np.zeros((3, 10), dtype=np.float32))


def test_machines_differ_by_seed_and_regimes_change_speed() -> None:
    speeds = []
    motor = MotorSimulator(1, start=0.0)
    for _ in range(60):
        motor.read(round(RATE))
        speeds.append(motor.shaft_hz)

    other = MotorSimulator(2, start=0.0).read(8000).data

    assert not np.array_equal(MotorSimulator(1, start=0.0).read(8000).data, other)
    assert max(speeds) / min(speeds) > 1.15
    assert min(speeds) >= 18 * 0.75 and max(speeds) <= 45 * 1.25


@pytest.mark.parametrize("seed", SEEDS)
def test_imbalance_raises_the_1x_line_in_the_radial_axes(seed: int) -> None:
    healthy, faulty, shaft_hz = _healthy_and_faulty(seed, "imbalance", seconds=10.0)
    # The last quarter second: short enough that the speed barely moves within it.
    freqs, before = _amplitude(healthy.data[:3, -1000:])
    _, after = _amplitude(faulty.data[:3, -1000:])
    one_x = np.argmin(np.abs(freqs - shaft_hz))
    near = slice(one_x - 1, one_x + 2)
    # Same machine, same noise: the difference is exactly what the fault added.
    added = np.fft.rfft((faulty.data[:3, -1000:] - healthy.data[:3, -1000:]) * np.hanning(1000))
    line = added[:, one_x - 1 + np.argmax(np.abs(added[0, near]))]

    assert np.argmax(after[0]) in range(one_x - 1, one_x + 2)
    assert after[0, near].max() > 2.5 * before[0, near].max()
    assert after[1, near].max() > 2.5 * before[1, near].max()
    assert np.argmax(np.abs(added[0])) in range(one_x - 1, one_x + 2)
    assert abs(line[1]) == pytest.approx(abs(line[0]), rel=0.25)
    assert np.angle(line[0] * np.conj(line[1])) == pytest.approx(np.pi / 2, abs=0.25)
    assert abs(line[2]) < 0.2 * abs(line[0])


@pytest.mark.parametrize("seed", SEEDS)
def test_bearing_wear_rings_the_resonance_at_the_outer_race_rate(seed: int) -> None:
    healthy, faulty, shaft_hz = _healthy_and_faulty(seed, "bearing_wear", seconds=10.0)
    x_before, x_after = healthy.data[0, -2000:], faulty.data[0, -2000:]
    freqs, before = _amplitude(x_before)
    _, after = _amplitude(x_after)
    high = freqs >= 1000
    # The envelope of the high band repeats once per ball passing the defect.
    ringing = np.fft.irfft(np.where(high, np.fft.rfft(x_after), 0), n=x_after.size)
    envelope_freqs, envelope = _amplitude(np.abs(ringing))
    search = (envelope_freqs > 20) & (envelope_freqs < 300)
    impact_hz = envelope_freqs[search][np.argmax(envelope[search])]

    assert _kurtosis(x_before) < 3.5
    assert _kurtosis(x_after) > 4.0
    # Healthy broadband noise already reaches the high band; the ringing must dwarf it.
    assert np.sum(after[high] ** 2) > 10 * np.sum(before[high] ** 2)
    assert 1200 <= freqs[high][np.argmax(after[high])] <= 1600
    assert impact_hz == pytest.approx(3.58 * shaft_hz, rel=0.08)


def test_bearing_wear_warms_the_housing_slowly() -> None:
    healthy, faulty, _ = _healthy_and_faulty(4, "bearing_wear", seconds=90.0)
    rise = faulty.data[3] - healthy.data[3]
    second = round(RATE)

    assert rise[:second].mean() < 0.3
    assert 2.0 < rise[-second:].mean() < 6.0


@pytest.mark.parametrize("fault", FAULTS[1:])
def test_severity_scales_the_fault_and_zero_is_none(fault: str) -> None:
    healthy = MotorSimulator(5, start=0.0).read(8000).data[0]
    energies = []
    for severity in (0.0, 0.5, 1.0):
        motor = MotorSimulator(5, start=0.0)
        motor.inject(fault, severity)
        x = motor.read(8000).data[0]
        energies.append(float(np.sum((x - healthy) ** 2)))

    assert energies[0] == 0.0
    assert 0 < energies[1] < energies[2]


def test_normal_removes_the_fault() -> None:
    motor = MotorSimulator(1, start=0.0)
    motor.inject("imbalance")
    motor.inject("normal")

    assert motor.fault == "normal"


def test_an_unknown_fault_is_refused_naming_the_valid_kinds() -> None:
    motor = MotorSimulator(1, start=0.0)

    with pytest.raises(ValueError, match="normal, imbalance, bearing_wear"):
        motor.inject("misalignment")
    with pytest.raises(ValueError, match="severity"):
        motor.inject("imbalance", -1.0)
    assert motor.fault == "normal"


def test_a_disturbance_adds_vibration_in_proportion_and_leaves_the_machine_as_it_is() -> None:
    reads = {}
    for noise in (1.0, 2.0, 4.0):
        motor = MotorSimulator(2, start=0.0)
        motor.inject("imbalance", 0.5)
        motor.disturb(noise)
        reads[noise] = motor.read(8000).data.astype(np.float64)
        assert motor.fault == "imbalance"

    added_by_one, added_by_three = reads[2.0] - reads[1.0], reads[4.0] - reads[1.0]
    # the same draws, scaled: what one step of noise adds, three steps add three times
    assert np.allclose(added_by_three[:3], 3 * added_by_one[:3], atol=1e-5)
    assert np.std(added_by_one[:3]) > 0.005  # the machine's own noise: 0.01 to 0.05 g
    assert np.array_equal(reads[4.0][3], reads[1.0][3])  # the temperature does not shake


def test_a_disturbance_is_refused_unless_finite_and_not_negative() -> None:
    motor = MotorSimulator(1, start=0.0)

    for noise in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="noise"):
            motor.disturb(noise)
