"""The contract every registered change detector keeps, run over each of them."""

from typing import Any

import numpy as np
import pytest

from edgestack.monitoring import DETECTORS, Detector
from edgestack.sensing import Quality
from processing.streams import sizes

QUIET = 20_000  # stationary values with no alarm: the false-alarm bound checked
BEFORE = 500  # values before the injected shift
MAX_DELAY = 100  # values after the shift within which it must be found

# Per registered detector: the parameters it is tested with.
CASES: dict[str, list[dict[str, Any]]] = {
    "page_hinkley": [{}, {"warmup": 30, "delta": 0.25, "threshold": 20.0}],
    "adwin": [{}, {"delta": 0.0005, "clock": 1, "max_window": 300}],
}
PARAMS = [
    pytest.param(name, params, id=f"{name}-{i}")
    for name, cases in CASES.items()
    for i, params in enumerate(cases)
]


def _stream(n: int, seed: int, *, level: float = 3.0, spread: float = 0.5) -> np.ndarray:
    return level + spread * np.random.default_rng(seed).standard_normal(n)


def _shifted(seed: int, shift_sd: float) -> np.ndarray:
    """`BEFORE` stationary values, then the mean moved by `shift_sd` standard deviations."""
    stream = _stream(BEFORE + 4 * MAX_DELAY, seed)
    stream[BEFORE:] += shift_sd * 0.5
    return stream


def _chunked(detector: Detector, values: np.ndarray, lengths: list[int]) -> np.ndarray:
    """The alarms of `detector` fed `values` in pieces of `lengths`, as indices into `values`."""
    quality, alarms, start = Quality(), [], 0
    for length in lengths:
        alarms.extend(start + detector.update(values[start : start + length], quality))
        start += length
    return np.array(alarms, dtype=np.int64)


def test_the_table_covers_every_registered_name() -> None:
    assert set(CASES) == set(DETECTORS.names())


@pytest.mark.parametrize(("name", "params"), PARAMS)
@pytest.mark.parametrize(("shift_sd", "seed"), [(2.0, 1), (-2.0, 2), (1.5, 3)])
def test_a_detector_finds_an_injected_shift_within_a_bounded_delay(
    name: str, params: dict[str, Any], shift_sd: float, seed: int
) -> None:
    stream = _shifted(seed, shift_sd)

    alarms = DETECTORS.build(name, params).update(stream, Quality())

    assert alarms.dtype == np.int64
    assert alarms.size, "the shift was never found"
    assert BEFORE <= alarms[0] <= BEFORE + MAX_DELAY


STATIONARY = {
    "normal": lambda rng: rng.normal(3.0, 0.5, QUIET),
    # a model's top-class confidence: bounded, skewed, with a long tail of doubtful windows
    "confidence": lambda rng: rng.beta(8.0, 1.0, QUIET),
    "right_or_wrong": lambda rng: (rng.random(QUIET) < 0.9).astype(float),
}


@pytest.mark.parametrize(("name", "params"), PARAMS)
@pytest.mark.parametrize(
    ("kind", "seed"), [("normal", 4), ("normal", 5), ("confidence", 6), ("right_or_wrong", 7)]
)
def test_a_detector_stays_quiet_on_a_stationary_stream(
    name: str, params: dict[str, Any], kind: str, seed: int
) -> None:
    stream = STATIONARY[kind](np.random.default_rng(seed))

    alarms = DETECTORS.build(name, params).update(stream, Quality())

    assert alarms.tolist() == []


@pytest.mark.parametrize(("name", "params"), PARAMS)
def test_a_detector_stays_quiet_on_a_constant_stream(name: str, params: dict[str, Any]) -> None:
    alarms = DETECTORS.build(name, params).update(np.full(3000, 7.0), Quality())

    assert alarms.tolist() == []


@pytest.mark.parametrize(("name", "params"), PARAMS)
def test_a_detector_raises_the_same_alarms_for_any_chunking(
    name: str, params: dict[str, Any]
) -> None:
    # several shifts, so alarms after the first (and the relearning after each) are compared too
    stream = np.concatenate([_shifted(6, 3.0), _shifted(7, -3.0) + 1.5, _shifted(8, 2.0)])
    whole = DETECTORS.build(name, params).update(stream, Quality())
    rng = np.random.default_rng(9)

    for _ in range(3):
        pieces = _chunked(DETECTORS.build(name, params), stream, sizes(rng, len(stream)))

        assert pieces.tolist() == whole.tolist()
    assert len(whole) >= 2  # the comparison was not of two empty lists


@pytest.mark.parametrize(("name", "params"), PARAMS)
def test_a_detector_counts_bad_values_and_skips_them(name: str, params: dict[str, Any]) -> None:
    stream = _shifted(10, 3.0)
    bad = stream.copy()
    holes = np.random.default_rng(11).choice(len(stream), size=30, replace=False)
    bad[holes[:20]] = np.nan
    bad[holes[20:25]] = np.inf
    bad[holes[25:]] = -np.inf
    quality = Quality()
    clean_alarms = DETECTORS.build(name, params).update(np.delete(stream, holes), Quality())

    alarms = DETECTORS.build(name, params).update(bad, quality)

    assert sum(quality.totals.values()) == 30
    # the same alarms as on the stream without the bad values, at the positions they hold
    kept = np.delete(np.arange(len(stream)), holes)
    assert alarms.tolist() == kept[clean_alarms].tolist()
    assert alarms.size


@pytest.mark.parametrize(("name", "params"), PARAMS)
def test_a_detector_forgets_the_stream_on_reset(name: str, params: dict[str, Any]) -> None:
    detector = DETECTORS.build(name, params)
    detector.update(_stream(BEFORE, 12, level=50.0), Quality())
    detector.reset()

    alarms = detector.update(_stream(QUIET // 4, 13), Quality())

    assert alarms.tolist() == []


@pytest.mark.parametrize("name", CASES)
def test_a_bad_parameter_is_refused_naming_it(name: str) -> None:
    field = next(iter(DETECTORS.params(name).model_fields))

    with pytest.raises(ValueError, match=f"detector.params.{field}"):
        DETECTORS.build(name, {field: -1}, where="detector")
