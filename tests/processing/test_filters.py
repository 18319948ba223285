import numpy as np
import pytest

from edgestack.processing import STEPS
from edgestack.sensing import Chunk, Quality

RATE = 1000.0


def _tones(*freqs: float, n: int = 4000) -> Chunk:
    t = np.arange(n) / RATE
    data = np.stack([np.sin(2 * np.pi * f * t) for f in freqs])
    return Chunk(0.0, RATE, tuple(f"f{f:g}" for f in freqs), ("g",) * len(freqs), data)


def _gain(kind: str, params: dict[str, float], freq: float) -> float:
    out = STEPS.build(kind, params).push(_tones(freq), Quality())
    settled = out.data[0, 1000:]  # after the start transient
    return float(np.sqrt(2 * np.mean(settled**2)))


@pytest.mark.parametrize(
    ("kind", "params", "passed", "stopped"),
    [
        ("lowpass", {"cutoff_hz": 50.0}, 10.0, 200.0),
        ("highpass", {"cutoff_hz": 50.0}, 200.0, 10.0),
        ("bandpass", {"low_hz": 80.0, "high_hz": 150.0}, 110.0, 300.0),
        ("bandpass", {"low_hz": 80.0, "high_hz": 150.0}, 110.0, 20.0),
    ],
)
def test_a_filter_passes_its_band_and_attenuates_outside_it(
    kind: str, params: dict[str, float], passed: float, stopped: float
) -> None:
    assert _gain(kind, params, passed) == pytest.approx(1.0, abs=0.05)
    assert _gain(kind, params, stopped) < 0.01


def test_a_lowpass_starts_settled_on_an_offset() -> None:
    chunk = Chunk(0.0, RATE, ("t",), ("degC",), np.full((1, 50), 21.0))

    out = STEPS.build("lowpass", {"cutoff_hz": 5.0}).push(chunk, Quality())

    assert out.data == pytest.approx(21.0, abs=1e-3)


def test_a_cutoff_at_or_above_nyquist_is_refused_at_the_first_chunk() -> None:
    step = STEPS.build("lowpass", {"cutoff_hz": 500.0})

    with pytest.raises(ValueError, match=r"Nyquist frequency 500\.0 Hz"):
        step.push(_tones(10.0), Quality())


def test_a_bandpass_with_its_edges_swapped_is_refused() -> None:
    with pytest.raises(ValueError, match="swap"):
        STEPS.build("bandpass", {"low_hz": 100.0, "high_hz": 50.0})


def test_a_nan_is_counted_and_does_not_poison_the_filter() -> None:
    chunk = _tones(10.0)
    chunk.data[0, 100] = np.nan
    quality = Quality()

    out = STEPS.build("lowpass", {"cutoff_hz": 50.0}).push(chunk, quality)

    assert np.isfinite(out.data).all()
    assert quality.totals == {"nan": 1}
