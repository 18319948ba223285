import numpy as np
import pytest

from edgestack.processing import STEPS
from edgestack.sensing import Chunk, Quality

from .streams import feed, joined, split


def _chunk(values: list[float], rate_hz: float = 10.0) -> Chunk:
    return Chunk(0.0, rate_hz, ("x",), ("g",), np.array([values], dtype=np.float32))


def test_interpolate_draws_a_line_across_a_gap_split_between_chunks() -> None:
    chunks = split(_chunk([0.0, np.nan, np.nan, np.nan, 4.0, 5.0]), [2, 1, 3])
    quality = Quality()

    out = feed(STEPS.build("clean", {"policy": "interpolate"}), chunks, quality)

    assert [c.n for c in out] == [1, 0, 5]  # held back until the gap ends
    assert joined(out).tolist() == [[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]]
    assert out[2].t0 == pytest.approx(0.1)
    assert quality.totals == {"nan": 3}


def test_interpolate_holds_the_last_value_through_a_gap_longer_than_max_gap() -> None:
    values = [1.0, np.nan, np.nan, np.nan, 7.0, np.nan, 9.0]

    out = STEPS.build("clean", {"max_gap": 2}).push(_chunk(values), Quality())

    assert out.data.tolist() == [[1.0, 1.0, 1.0, 1.0, 7.0, 8.0, 9.0]]


def test_a_long_gap_is_not_held_back_beyond_max_gap() -> None:
    step = STEPS.build("clean", {"max_gap": 3})

    out = step.push(_chunk([2.0] + [np.nan] * 10), Quality())

    assert out.n == 11
    assert out.data.tolist() == [[2.0] * 11]


def test_a_gap_at_the_start_takes_the_first_good_value() -> None:
    out = STEPS.build("clean").push(_chunk([np.nan, np.inf, 3.0, 4.0]), Quality())

    assert out.data.tolist() == [[3.0, 3.0, 3.0, 4.0]]


def test_drop_removes_bad_samples_and_says_when_the_rest_were_taken() -> None:
    chunk = Chunk(
        0.0,
        10.0,
        ("x", "y"),
        ("g", "g"),
        np.array([[1, np.nan, 3, 4], [5, 6, 7, np.inf]], dtype=np.float32),
    )
    quality = Quality()

    out = STEPS.build("clean", {"policy": "drop"}).push(chunk, quality)

    assert out.data.tolist() == [[1.0, 3.0], [5.0, 7.0]]
    assert out.times() == pytest.approx([0.0, 0.2])
    assert quality.totals == {"nan": 1, "inf": 1}


def test_clip_bounds_frames_and_holds_the_last_good_value() -> None:
    data = np.array([[[0.5, 0.5], [3.0, -2.0], [np.nan, 0.1]]], dtype=np.float32)  # (1, 3, 2)
    chunk = Chunk(0.0, 10.0, ("camera",), ("lux",), data)
    quality = Quality()

    out = STEPS.build("clean", {"policy": "clip", "low": -1.0, "high": 1.0}).push(chunk, quality)

    assert out.data.tolist() == [[[0.5, 0.5], [1.0, -1.0], [1.0, pytest.approx(0.1)]]]
    assert quality.totals == {"out_of_range": 2, "nan": 1}
    _, examples = quality.take()
    assert ("nan", "camera[2] = nan") in examples


def test_bounds_in_the_wrong_order_are_refused() -> None:
    with pytest.raises(ValueError, match="swap"):
        STEPS.build("clean", {"low": 1.0, "high": -1.0})


def test_a_gap_that_another_channel_holds_back_is_interpolated_whole() -> None:
    nan = np.nan
    data = np.array([[0, nan, nan, nan, 4, 5], [0, 1, nan, nan, nan, 5]], dtype=np.float32)
    chunk = Chunk(0.0, 10.0, ("x", "y"), ("g", "g"), data)

    out = feed(STEPS.build("clean"), split(chunk, [5, 1]))

    assert [c.n for c in out] == [2, 4]  # y's open gap held x back from its third sample
    assert joined(out).tolist() == [[0, 1, 2, 3, 4, 5]] * 2


def test_a_long_gap_split_between_chunks_is_held_whole() -> None:
    chunks = split(_chunk([1.0] + [np.nan] * 5 + [7.0, 8.0]), [5, 3])

    out = feed(STEPS.build("clean", {"max_gap": 3}), chunks)

    assert joined(out).tolist() == [[1.0] * 6 + [7.0, 8.0]]
