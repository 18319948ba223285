"""The contract every registered step, extractor and row transform keeps, run over each of them."""

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from edgestack.processing import EXTRACTORS, STEPS, TRANSFORMS
from edgestack.sensing import Chunk, Quality

from .streams import feed, joined, recording, sizes, split

N = 3000


def _with_gaps(chunk: Chunk, seed: int = 1) -> Chunk:
    """`chunk` with short NaN runs, a long one and an infinity in it."""
    rng = np.random.default_rng(seed)
    data = chunk.data.copy()
    for start in rng.choice(chunk.n - 10, size=12, replace=False):
        data[rng.integers(len(chunk.channels)), start : start + rng.integers(1, 4)] = np.nan
    data[0, 1000:1040] = np.nan
    data[-1, 2000] = np.inf
    return chunk.with_data(data)


def _irregular() -> Chunk:
    """Samples at jittered times, some of them earlier than the one before."""
    rng = np.random.default_rng(2)
    chunk = recording(N)
    times = chunk.t0 + np.cumsum(rng.uniform(0.5e-3, 1.5e-3, N))
    times[rng.choice(N, size=20, replace=False)] -= 0.01
    return chunk.with_data(chunk.data, timestamps=times)


# Per registered step: (parameters, input) cases; the input holds bad values to count.
STEP_CASES: dict[str, list[tuple[dict[str, Any], Callable[[], Chunk]]]] = {
    "clean": [
        ({"policy": "interpolate", "max_gap": 8}, lambda: _with_gaps(recording(N))),
        ({"policy": "drop"}, lambda: _with_gaps(recording(N))),
        (
            {"policy": "clip", "low": -1.0, "high": 1.0},
            lambda: _with_gaps(recording(N, frame=(3, 2))),
        ),
    ],
    "lowpass": [({"cutoff_hz": 50.0}, lambda: _with_gaps(recording(N)))],
    "highpass": [({"cutoff_hz": 50.0, "order": 2}, lambda: _with_gaps(recording(N)))],
    "bandpass": [({"low_hz": 20.0, "high_hz": 200.0}, lambda: _with_gaps(recording(N)))],
    "resample": [
        ({"rate_hz": 400.0}, lambda: _with_gaps(recording(N))),
        ({"rate_hz": 1500.0}, lambda: _with_gaps(recording(N))),
        ({"rate_hz": 500.0}, _irregular),
    ],
}
STEP_PARAMS = [
    pytest.param(name, params, make, id=f"{name}-{i}")
    for name, cases in STEP_CASES.items()
    for i, (params, make) in enumerate(cases)
]


def _windows(shape: tuple[int, ...], seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    size = shape[2]
    tone = np.sin(2 * np.pi * rng.uniform(0.01, 0.4, shape[:2])[..., None] * np.arange(size))
    tone = tone.reshape(*shape[:3], *[1] * (len(shape) - 3))
    return (tone + 0.3 * rng.standard_normal(shape)).astype(np.float32)


SCALAR = (40, 2, 256)
# Per registered extractor: (parameters, window shape, rate) cases.
EXTRACTOR_CASES: dict[str, list[tuple[dict[str, Any], tuple[int, ...], float]]] = {
    "time_stats": [
        ({}, SCALAR, 1000.0),
        (
            {"stats": ["mean", "min", "max", "rms", "peak", "crest", "kurtosis", "skewness"]},
            SCALAR,
            1000.0,
        ),
    ],
    "mean": [({}, SCALAR, 1000.0)],
    "band_energies": [({}, SCALAR, 1000.0), ({"bands": 5, "scale": "linear"}, SCALAR, 1000.0)],
    "dominant_frequency": [({}, SCALAR, 1000.0)],
    "spectral_centroid": [({}, SCALAR, 1000.0)],
    "log_mel": [({"n_mels": 20, "frame": 128, "hop": 64}, (30, 1, 512), 8000.0)],
    "mfcc": [({"n_mfcc": 10, "n_mels": 20, "frame": 128, "hop": 64}, (30, 1, 512), 8000.0)],
    "image": [({"height": 4, "width": 5}, (20, 1, 2, 12, 15), 10.0)],
    "raw": [({"size": 256}, SCALAR, 1000.0)],
}
EXTRACTOR_PARAMS = [
    pytest.param(name, params, shape, rate, id=f"{name}-{i}")
    for name, cases in EXTRACTOR_CASES.items()
    for i, (params, shape, rate) in enumerate(cases)
]

TRANSFORM_CASES: dict[str, dict[str, Any]] = {
    "standardise": {},
    "normalise": {},
    "pca": {"n_components": 3},
}


def test_the_tables_cover_every_registered_name() -> None:
    assert set(STEP_CASES) == set(STEPS.names())
    assert set(EXTRACTOR_CASES) == set(EXTRACTORS.names())
    assert set(TRANSFORM_CASES) == set(TRANSFORMS.names())


@pytest.mark.parametrize(("name", "params", "make"), STEP_PARAMS)
def test_a_step_gives_the_same_output_for_any_chunking(
    name: str, params: dict[str, Any], make: Callable[[], Chunk]
) -> None:
    chunk = make()
    whole = STEPS.build(name, params).push(chunk, Quality())
    rng = np.random.default_rng(7)

    for _ in range(4):
        outputs = feed(STEPS.build(name, params), split(chunk, sizes(rng, chunk.n)))

        assert np.allclose(joined(outputs), whole.data, rtol=1e-5, atol=1e-5)
        if whole.timestamps is not None:
            stamps = np.concatenate([c.times() for c in outputs])
            assert np.allclose(stamps, whole.timestamps, rtol=0, atol=1e-9)
    assert whole.n > chunk.n // 4  # something came out: the comparison was not of two empties


@pytest.mark.parametrize(("name", "params", "make"), STEP_PARAMS)
def test_a_step_keeps_the_channels_and_frame_and_gives_float32(
    name: str, params: dict[str, Any], make: Callable[[], Chunk]
) -> None:
    chunk = make()

    out = STEPS.build(name, params).push(chunk, Quality())

    assert (out.channels, out.units, out.frame) == (chunk.channels, chunk.units, chunk.frame)
    assert out.data.dtype == np.float32


@pytest.mark.parametrize(("name", "params", "make"), STEP_PARAMS)
def test_a_step_counts_bad_values_and_gives_finite_samples(
    name: str, params: dict[str, Any], make: Callable[[], Chunk]
) -> None:
    chunk = make()
    quality = Quality()
    nans, infs = int(np.isnan(chunk.data).sum()), int(np.isinf(chunk.data).sum())

    out = STEPS.build(name, params).push(chunk, quality)

    assert np.isfinite(out.data).all()
    if chunk.timestamps is None:  # irregular input drops the samples that go back first
        assert quality.totals["nan"] == nans
        assert quality.totals["inf"] == infs


@pytest.mark.parametrize(("name", "params", "make"), STEP_PARAMS)
def test_a_reset_step_gives_what_a_new_one_gives(
    name: str, params: dict[str, Any], make: Callable[[], Chunk]
) -> None:
    first, second = split(make(), [1700, N - 1700])
    step = STEPS.build(name, params)
    step.push(first, Quality())

    step.reset()
    again = step.push(second, Quality())

    fresh = STEPS.build(name, params).push(second, Quality())
    assert np.allclose(again.data, fresh.data, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("name", "params", "shape", "rate"), EXTRACTOR_PARAMS)
def test_an_extractor_gives_its_named_columns_window_by_window(
    name: str, params: dict[str, Any], shape: tuple[int, ...], rate: float
) -> None:
    windows = _windows(shape)
    extractor = EXTRACTORS.build(name, params)
    channels = [f"s{c}" for c in range(shape[1])]

    whole = extractor(windows, rate)
    parts = [extractor(part, rate) for part in np.array_split(windows, [0, 1, 7, 8, 23])]
    names = extractor.names(channels)

    assert whole.shape == (shape[0], len(names))
    assert whole.dtype == np.float32
    assert len(set(names)) == len(names)
    assert all(n.split(".")[0] in channels for n in names)
    assert np.allclose(np.concatenate(parts), whole, rtol=1e-5, atol=1e-6)
    assert np.ptp(whole, axis=0).max() > 0  # the windows differ, so some column must


@pytest.mark.parametrize(("name", "params", "shape", "rate"), EXTRACTOR_PARAMS)
def test_an_extractor_gives_finite_rows_for_bad_windows_and_keeps_the_good(
    name: str, params: dict[str, Any], shape: tuple[int, ...], rate: float
) -> None:
    windows = _windows(shape)
    clean = EXTRACTORS.build(name, params)(windows, rate)
    windows[0].flat[-5] = np.nan  # in the newest sample, which every extractor reads
    windows[1].flat[-7] = np.inf
    windows[2] = 0.0

    rows = EXTRACTORS.build(name, params)(windows, rate)

    assert np.isfinite(rows).all()
    assert np.array_equal(rows[3:], clean[3:])
    assert EXTRACTORS.build(name, params)(windows[:0], rate).shape == (0, rows.shape[1])


@pytest.mark.parametrize(("name", "params"), TRANSFORM_CASES.items())
def test_a_transform_fitted_on_rows_gives_the_same_rows_for_any_chunking(
    name: str, params: dict[str, Any]
) -> None:
    rng = np.random.default_rng(4)
    rows = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 6)) + 5.0
    transform = TRANSFORMS.build(name, params).fit(rows)

    whole = transform.transform(rows)
    chunked = np.concatenate([transform.transform(p) for p in np.array_split(rows, [1, 50, 51])])

    assert whole.shape[0] == len(rows)
    assert np.allclose(chunked, whole)
    assert whole.shape != rows.shape or not np.allclose(whole, rows)
