import numpy as np
import pytest
from scipy.stats import ks_2samp

from edgestack.bundle import Reference
from edgestack.monitoring import BINS, DriftSketch, ks, psi, reference
from edgestack.sensing import Quality


def _rows(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    """Three features of different kinds: normal, skewed, and a few discrete levels."""
    rng = np.random.default_rng(seed)
    return np.column_stack(
        [
            rng.normal(5.0, 2.0, n) + shift * 2.0,
            rng.exponential(1.0, n),
            rng.integers(0, 3, n).astype(float),
        ]
    )


def _sketch(ref_rows: np.ndarray, live_rows: np.ndarray) -> tuple[DriftSketch, np.ndarray]:
    sketch = DriftSketch(reference(ref_rows))
    sketch.update(live_rows, Quality())
    return sketch, sketch.counts


def test_a_reference_holds_ascending_quantile_edges_and_shares_that_sum_to_one() -> None:
    rows = _rows(2000, 0)

    ref = reference(rows)

    assert ref.rows == 2000
    assert len(ref.edges) == 3 and all(len(e) == BINS - 1 for e in ref.edges)
    assert all(e == sorted(e) for e in ref.edges)
    assert np.allclose(np.sum(ref.shares, axis=1), 1.0, atol=1e-5)
    # a continuous feature: equal shares, and none above the largest training value
    assert np.allclose(ref.shares[0][:-1], 1 / (BINS - 1), atol=0.01)
    assert ref.shares[0][-1] == 0.0


def test_live_rows_like_the_training_rows_score_low_and_shifted_ones_high() -> None:
    ref = reference(_rows(3000, 0))
    same, shifted = DriftSketch(ref), DriftSketch(ref)

    same.update(_rows(1000, 1), Quality())
    shifted.update(_rows(1000, 2, shift=0.5), Quality())

    assert (psi(ref, same.counts) < 0.05).all()
    assert (ks(ref, same.counts) < 0.06).all()
    assert psi(ref, shifted.counts)[0] > 0.2 and ks(ref, shifted.counts)[0] > 0.15
    assert (psi(ref, shifted.counts)[1:] < 0.05).all()  # only the first feature moved


def test_ks_on_the_sketches_is_a_lower_bound_of_ks_on_the_raw_values() -> None:
    train, live = _rows(3000, 0), _rows(800, 3, shift=0.2)
    ref = reference(train)
    _, counts = _sketch(train, live)

    on_sketches = ks(ref, counts)

    for i in range(2):  # the continuous features
        raw = ks_2samp(train[:, i], live[:, i]).statistic
        assert raw * 0.5 <= on_sketches[i] <= raw + 1e-9


def test_sketches_of_parts_add_up_to_the_sketch_of_the_whole_and_take_starts_afresh() -> None:
    ref = reference(_rows(1000, 0))
    live = _rows(500, 4)
    whole, parts = DriftSketch(ref), DriftSketch(ref)
    whole.update(live, Quality())

    taken = []
    for piece in np.array_split(live, [1, 2, 100, 100, 317]):
        parts.update(piece, Quality())
        taken.append(parts.take())

    assert (sum(taken) == whole.counts).all()
    assert whole.counts.sum() == 500 * 3
    assert parts.counts.sum() == 0


def test_a_row_with_a_non_finite_value_is_counted_and_left_out() -> None:
    ref = reference(_rows(1000, 0))
    live = _rows(100, 5)
    live[3, 0], live[7, 2], live[8, 1] = np.nan, np.inf, -np.inf
    sketch, quality = DriftSketch(ref), Quality()

    sketch.update(live, quality)

    assert quality.totals == {"drift_nonfinite": 3}
    assert (sketch.counts.sum(axis=1) == 97).all()


def test_a_feature_with_no_live_rows_scores_nan() -> None:
    ref = reference(_rows(1000, 0))
    counts = DriftSketch(ref).counts

    assert np.isnan(psi(ref, counts)).all() and np.isnan(ks(ref, counts)).all()


def test_a_constant_feature_scores_zero_when_it_stays_and_high_when_it_moves() -> None:
    train = np.full((500, 1), 2.0)
    ref = reference(train)

    _, same = _sketch(train, np.full((50, 1), 2.0))
    _, moved = _sketch(train, np.full((50, 1), 3.0))

    assert psi(ref, same)[0] == pytest.approx(0.0) and ks(ref, same)[0] == pytest.approx(0.0)
    assert psi(ref, moved)[0] > 1.0 and ks(ref, moved)[0] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (np.zeros(10), r"rows: expected a \(k, features\) array"),
        (np.zeros((0, 3)), r"rows: expected a \(k, features\) array"),
        (np.full((10, 2), np.nan), "feature 0 has no finite value"),
    ],
)
def test_a_reference_of_bad_rows_is_refused_naming_why(rows: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        reference(rows)
    with pytest.raises(ValueError, match="bins: 2; give at least 3"):
        reference(np.zeros((10, 2)), bins=2)


def test_rows_of_another_width_are_refused_naming_the_shape() -> None:
    ref = reference(_rows(100, 0))
    sketch = DriftSketch(ref)

    with pytest.raises(ValueError, match=r"expected \(k, 3\) feature rows, got \(4, 2\)"):
        sketch.update(np.zeros((4, 2)), Quality())
    with pytest.raises(ValueError, match=r"counts: expected shape \(3, 10\)"):
        psi(ref, np.zeros((2, BINS)))


def test_ks_stays_within_one_when_the_stored_shares_sum_past_it() -> None:
    # Shares rounded for the manifest may add up to a few millionths over 1.
    ref = Reference(rows=10, edges=[[0.0, 1.0]], shares=[[0.5, 0.500001, 0.0]])

    scores = ks(ref, np.array([[0, 0, 7]]))

    assert 0.99 < scores[0] <= 1.0
