import numpy as np
import pytest

from edgestack.processing import STEPS
from edgestack.sensing import Chunk, Quality

from .streams import feed, joined, split


def _sine(freq: float, rate_hz: float, n: int, t0: float = 50.0) -> Chunk:
    data = np.sin(2 * np.pi * freq * np.arange(n) / rate_hz)[None, :]
    return Chunk(t0, rate_hz, ("x",), ("g",), data)


@pytest.mark.parametrize(
    ("rate_in", "rate_out"), [(1000.0, 250.0), (1000.0, 1500.0), (800.0, 1000.0)]
)
def test_resampling_keeps_a_sine_in_band_on_the_output_grid(
    rate_in: float, rate_out: float
) -> None:
    chunk = _sine(20.0, rate_in, 4000)

    out = STEPS.build("resample", {"rate_hz": rate_out}).push(chunk, Quality())

    expected = np.sin(2 * np.pi * 20.0 * (out.times() - chunk.t0))
    assert out.rate_hz == rate_out
    assert out.n == pytest.approx(4000 * rate_out / rate_in, abs=rate_out / rate_in * 40)
    assert out.data[0, 100:-100] == pytest.approx(expected[100:-100], abs=2e-3)


def test_downsampling_removes_what_the_new_rate_cannot_carry() -> None:
    chunk = _sine(400.0, 1000.0, 4000)  # above the 125 Hz Nyquist of 250 Hz

    out = STEPS.build("resample", {"rate_hz": 250.0}).push(chunk, Quality())

    assert np.abs(out.data[0, 50:]).max() < 0.01


def test_a_rate_that_is_no_ratio_of_small_integers_is_refused() -> None:
    step = STEPS.build("resample", {"rate_hz": 997.0})

    with pytest.raises(ValueError, match="ratio of integers"):
        step.push(_sine(1.0, 1000.0, 10), Quality())


def test_irregular_samples_land_on_a_regular_grid_and_going_back_is_counted() -> None:
    rng = np.random.default_rng(0)
    times = 100.0 + np.cumsum(rng.uniform(0.005, 0.015, 400))
    times[[50, 200]] -= 0.05  # two readings from the past
    ramp = (times - 100.0)[None, :] * 3.0
    chunk = Chunk(times[0], 100.0, ("x",), ("g",), ramp, timestamps=times)
    quality = Quality()

    out = feed(STEPS.build("resample", {"rate_hz": 50.0}), split(chunk, [7, 150, 1, 242]), quality)

    data = joined(out)
    grid = out[0].t0 + np.arange(data.shape[1]) / 50.0
    assert out[0].t0 == times[0]
    assert data[0] == pytest.approx((grid - 100.0) * 3.0, abs=1e-4)  # a line stays a line
    assert quality.totals == {"time_backwards": 2}


def test_a_live_source_that_starts_empty_then_sends_irregular_readings_is_resampled() -> None:
    step = STEPS.build("resample", {"rate_hz": 50.0})
    times = 100.0 + np.arange(100) / 50.0
    readings = Chunk(times[0], 50.0, ("x",), ("g",), np.ones((1, 100)), timestamps=times)

    nothing = step.push(Chunk.empty(99.0, 50.0, ("x",), ("g",)), Quality())
    out = step.push(readings, Quality())

    assert nothing.n == 0
    assert out.t0 == times[0]
    assert out.n >= 99
    assert np.all(out.data == 1.0)


def test_regular_input_already_at_the_rate_passes_unchanged() -> None:
    chunk = _sine(3.0, 50.0, 200)

    out = STEPS.build("resample", {"rate_hz": 50.0}).push(chunk, Quality())

    assert out.t0 == chunk.t0
    assert np.array_equal(out.data, chunk.data)
