import numpy as np
import pytest

from edgestack.bundle import InputSpec
from edgestack.processing import FeaturePipeline, extract, feature_names, vibration_spec
from edgestack.sensing import Chunk, MotorSimulator

RATE = 4000.0
SENSORS = ["accel_x", "temperature"]


def _column(features: np.ndarray, sensors: list[str], name: str) -> np.ndarray:
    return features[:, feature_names(sensors).index(name)]


def _sine(freq: float, size: int = 1024, amplitude: float = 1.0) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(size) / RATE)


def test_names_match_columns_and_read_sensor_dot_feature() -> None:
    windows = np.random.default_rng(0).standard_normal((5, 2, 256))

    features = extract(windows, SENSORS, RATE)
    names = feature_names(SENSORS)

    assert features.shape == (5, len(names))
    assert features.dtype == np.float32
    assert len(set(names)) == len(names)
    assert {"accel_x.rms", "accel_x.kurtosis", "accel_x.band3", "accel_x.dominant_hz"} <= set(names)
    assert names[-1] == "temperature.mean"


@pytest.mark.parametrize("value", [0.0, 1.0, -0.3, 1e6])
def test_constant_windows_give_finite_features(value: float) -> None:
    windows = np.full((3, 2, 512), value, dtype=np.float32)

    features = extract(windows, SENSORS, RATE)

    assert np.isfinite(features).all()
    assert _column(features, SENSORS, "accel_x.rms").tolist() == [0.0] * 3
    assert _column(features, SENSORS, "accel_x.kurtosis").tolist() == [0.0] * 3
    assert _column(features, SENSORS, "temperature.mean") == pytest.approx([value] * 3)


def test_no_windows_give_no_rows() -> None:
    features = extract(np.empty((0, 2, 64), dtype=np.float32), SENSORS, RATE)

    assert features.shape == (0, len(feature_names(SENSORS)))


@pytest.mark.parametrize("freq", [37.0, 123.4, 997.0, 1512.3])
def test_dominant_frequency_of_a_sine_is_found_within_one_bin(freq: float) -> None:
    windows = _sine(freq)[None, None, :]

    features = extract(windows, ["accel_x"], RATE)

    bin_hz = RATE / 1024
    assert abs(_column(features, ["accel_x"], "accel_x.dominant_hz")[0] - freq) <= bin_hz
    assert abs(_column(features, ["accel_x"], "accel_x.centroid_hz")[0] - freq) <= 2 * bin_hz


def test_time_features_match_their_definitions() -> None:
    rng = np.random.default_rng(1)
    noise = rng.standard_normal(200_000)
    windows = np.stack([_sine(50.0, 200_000, 2.0), noise])[:, None, :]

    features = extract(windows, ["accel_x"], RATE)
    rms, peak, crest, kurtosis, skewness = features[:, :5].T

    assert rms == pytest.approx([np.sqrt(2.0), 1.0], rel=0.01)
    assert peak[0] == pytest.approx(2.0, rel=1e-3)
    assert crest[0] == pytest.approx(np.sqrt(2.0), rel=1e-3)
    assert kurtosis == pytest.approx([1.5, 3.0], rel=0.03)
    assert skewness == pytest.approx([0.0, 0.0], abs=0.03)


def test_band_energies_are_shares_that_place_a_tone() -> None:
    low, high = _sine(40.0), _sine(1500.0)
    windows = np.stack([low, high])[:, None, :]

    features = extract(windows, ["accel_x"], RATE)
    bands = features[:, [feature_names(["accel_x"]).index(f"accel_x.band{b}") for b in range(8)]]

    assert bands.sum(axis=1) == pytest.approx([1.0, 1.0], rel=1e-5)
    assert np.argmax(bands[0]) == 2  # 31-62 Hz
    assert np.argmax(bands[1]) == 7  # 1-2 kHz


def test_wrong_window_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="one row per sensor"):
        extract(np.zeros((2, 3, 64)), SENSORS, RATE)


def test_the_pipeline_over_chunks_equals_extract_over_the_recording() -> None:
    spec = vibration_spec(window=256, hop=128)
    motor = MotorSimulator(1, start=0.0)
    chunks = [motor.read(size) for size in (1, 300, 77, 1000, 5, 600)]
    recording = np.hstack([c.data for c in chunks])
    starts = range(0, recording.shape[1] - 256 + 1, 128)
    windows = np.stack([recording[:, s : s + 256] for s in starts])

    pipeline = FeaturePipeline(spec)
    rows = np.concatenate([pipeline.push(c) for c in chunks])

    assert rows.shape == (len(starts), len(spec.features))
    assert np.array_equal(rows, extract(windows, spec.sensors, spec.rate_hz))


def test_reset_starts_windows_afresh() -> None:
    pipeline = FeaturePipeline(vibration_spec(window=256, hop=256))
    motor = MotorSimulator(1, start=0.0)
    pipeline.push(motor.read(200))

    pipeline.reset()

    assert len(pipeline.push(motor.read(100))) == 0
    assert len(pipeline.push(motor.read(156))) == 1


def test_the_vibration_spec_lists_every_feature_of_the_motor_channels() -> None:
    spec = vibration_spec()

    assert spec.sensors == list(MotorSimulator.channels)
    assert (spec.rate_hz, spec.window, spec.hop) == (8000.0, 2048, 2048)
    assert spec.features == feature_names(spec.sensors)


def test_a_spec_whose_features_differ_is_refused_naming_the_field() -> None:
    spec = vibration_spec()
    stale = InputSpec(**{**spec.model_dump(), "features": spec.features[:-1]})

    with pytest.raises(ValueError, match=r"features: .* feature_names\(sensors\)"):
        FeaturePipeline(stale)


def test_chunks_from_other_sensors_or_rates_are_refused() -> None:
    pipeline = FeaturePipeline(vibration_spec())
    chunk = MotorSimulator(1, start=0.0).read(10)
    swapped = Chunk(0.0, RATE, chunk.channels[::-1], chunk.units[::-1], chunk.data[::-1])
    slower = MotorSimulator(1, rate_hz=2000.0, start=0.0).read(10)

    with pytest.raises(ValueError, match="channels"):
        pipeline.push(swapped)
    with pytest.raises(ValueError, match="rate"):
        pipeline.push(slower)
