import numpy as np
import pytest

from edgestack.bundle import FeatureSpec, InputSpec, StageSpec
from edgestack.processing import EXTRACTORS, FeaturePipeline, Windower, make_spec, vibration_spec
from edgestack.registry import RegistryError
from edgestack.sensing import Chunk, MotorSimulator

RATE = 4000.0


def _batch(spec: InputSpec, recording: np.ndarray) -> np.ndarray:
    """The spec's extractors over every window of the whole recording, in one call each."""
    windows = Windower(spec.window, spec.hop).push(recording)
    columns = []
    for feature in spec.extractors:
        index = [spec.sensors.index(c) for c in feature.channels or spec.sensors]
        columns.append(EXTRACTORS.build(feature.kind, feature.params)(windows[:, index], RATE))
    return np.hstack(columns)


def test_the_pipeline_over_chunks_equals_the_extractors_over_the_recording() -> None:
    spec = vibration_spec(rate_hz=RATE, window=256, hop=128)
    motor = MotorSimulator(1, rate_hz=RATE, start=0.0)
    chunks = [motor.read(size) for size in (1, 300, 77, 1000, 5, 600)]
    recording = np.hstack([c.data for c in chunks])

    pipeline = FeaturePipeline(spec)
    rows = np.concatenate([pipeline.push(c) for c in chunks])

    assert rows.shape == ((recording.shape[1] - 256) // 128 + 1, len(spec.features))
    assert rows.dtype == np.float32
    assert np.array_equal(rows, _batch(spec, recording))


def test_steps_run_before_the_windows_and_count_bad_samples() -> None:
    spec = make_spec(
        ["x"],
        RATE,
        64,
        64,
        steps=[StageSpec(kind="clean"), StageSpec(kind="highpass", params={"cutoff_hz": 100.0})],
        extractors=[FeatureSpec(kind="time_stats", params={"stats": ["mean"]})],
    )
    data = np.full((1, 640), 5.0, dtype=np.float32)
    data[0, 10] = np.nan
    pipeline = FeaturePipeline(spec)

    rows = pipeline.push(Chunk(0.0, RATE, ("x",), ("g",), data))

    assert rows.shape == (10, 1)
    assert np.abs(rows).max() < 1e-3  # the highpass removed the offset
    assert pipeline.quality.totals == {"nan": 1}


def test_reset_starts_windows_and_steps_afresh() -> None:
    pipeline = FeaturePipeline(vibration_spec(window=256, hop=256))
    motor = MotorSimulator(1, start=0.0)
    pipeline.push(motor.read(200))

    pipeline.reset()

    assert len(pipeline.push(motor.read(100))) == 0
    assert len(pipeline.push(motor.read(156))) == 1


def test_the_vibration_spec_gives_the_motor_features() -> None:
    spec = vibration_spec()

    assert spec.sensors == list(MotorSimulator.channels)
    assert (spec.rate_hz, spec.window, spec.hop) == (8000.0, 2048, 2048)
    assert len(spec.features) == 3 * (5 + 8 + 2) + 1
    assert {"accel_x.kurtosis", "accel_z.band7", "accel_y.dominant_hz"} <= set(spec.features)
    assert spec.features[-1] == "temperature.mean"


def test_a_spec_whose_features_differ_is_refused_naming_the_field() -> None:
    spec = vibration_spec()
    stale = InputSpec(**{**spec.model_dump(), "features": spec.features[:-1]})

    with pytest.raises(ValueError, match=r"features: .* leave features out of the spec") as raised:
        FeaturePipeline(stale)
    assert "()" not in str(raised.value)  # advice names no Python function


def test_bad_stages_are_refused_naming_where_they_are() -> None:
    spec = vibration_spec()
    bad_step = InputSpec(**{**spec.model_dump(), "steps": [{"kind": "lowpass", "params": {}}]})

    with pytest.raises(RegistryError, match=r"steps\[0\]\.params\.cutoff_hz"):
        FeaturePipeline(bad_step)
    with pytest.raises(ValueError, match=r"extractors\[0\]\.channels: \['gyro'\]"):
        make_spec(["x"], RATE, 8, 8, extractors=[FeatureSpec(kind="mean", channels=["gyro"])])


def test_chunks_from_other_sensors_or_rates_are_refused() -> None:
    pipeline = FeaturePipeline(vibration_spec())
    chunk = MotorSimulator(1, start=0.0).read(10)
    swapped = Chunk(0.0, 8000.0, chunk.channels[::-1], chunk.units[::-1], chunk.data[::-1])
    slower = MotorSimulator(1, rate_hz=2000.0, start=0.0).read(10)

    with pytest.raises(ValueError, match="channels"):
        pipeline.push(swapped)
    with pytest.raises(ValueError, match="rate"):
        pipeline.push(slower)


def test_values_no_step_repairs_are_counted_zeroed_and_leave_the_input_alone() -> None:
    spec = make_spec(
        ["x"], RATE, 8, 8, extractors=[FeatureSpec(kind="time_stats", params={"stats": ["max"]})]
    )
    data = np.full((1, 16), -1.0, dtype=np.float32)
    data[0, [3, 12]] = [np.inf, np.nan]
    pipeline = FeaturePipeline(spec)

    rows = pipeline.push(Chunk(0.0, RATE, ("x",), ("g",), data))

    assert rows[:, 0].tolist() == [0.0, 0.0]  # the zeroed samples are each window's maximum
    assert pipeline.quality.totals == {"non_finite": 2}
    assert np.isnan(data[0, 12])  # the source's array is not written to


def test_finite_values_too_large_to_square_are_not_counted_bad() -> None:
    spec = make_spec(
        ["x"], RATE, 8, 8, extractors=[FeatureSpec(kind="time_stats", params={"stats": ["max"]})]
    )
    data = np.full((1, 8), 3e38, dtype=np.float32)
    pipeline = FeaturePipeline(spec)

    rows = pipeline.push(Chunk(0.0, RATE, ("x",), ("g",), data))

    assert pipeline.quality.totals == {}
    assert rows[:, 0].tolist() == [pytest.approx(3e38)]


def test_an_extractor_reads_its_channels_in_the_order_it_names_them() -> None:
    mean = FeatureSpec(kind="time_stats", params={"stats": ["mean"]}, channels=["y", "x"])
    spec = make_spec(["x", "y"], RATE, 4, 4, extractors=[mean])
    data = np.array([[1.0] * 4, [2.0] * 4], dtype=np.float32)

    rows = FeaturePipeline(spec).push(Chunk(0.0, RATE, ("x", "y"), ("g", "g"), data))

    assert spec.features == ["y.mean", "x.mean"]
    assert rows.tolist() == [[2.0, 1.0]]
