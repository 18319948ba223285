import numpy as np
import pytest

from edgestack.monitoring import EnergyScore, mean_square
from edgestack.sensing import Quality


def _windows(n: int, seed: int, *, amplitude: float = 1.0) -> np.ndarray:
    """`n` windows of two channels of 64 samples: noise on a tone."""
    rng = np.random.default_rng(seed)
    tone = np.sin(np.arange(64) / 3.0)
    return (tone + 0.3 * rng.standard_normal((n, 2, 64))) * amplitude


def test_windows_like_the_stream_score_low_and_a_louder_one_high() -> None:
    score = EnergyScore()
    score.update(_windows(200, 0), Quality())

    usual = score.update(_windows(50, 1), Quality())
    loud = score.update(_windows(1, 2, amplitude=3.0), Quality())

    assert usual.shape == (50,) and usual.max() < 5.0
    assert loud[0] > 10.0


def test_the_first_windows_score_zero_while_the_statistics_settle() -> None:
    scores = EnergyScore(warmup=20).update(_windows(30, 3), Quality())

    assert (scores[:20] == 0).all() and (scores[20:] > 0).all()


def test_any_chunking_gives_the_same_scores() -> None:
    windows = np.concatenate([_windows(100, 4), _windows(20, 5, amplitude=2.0)])
    whole = EnergyScore().update(windows, Quality())
    score = EnergyScore()

    parts = [score.update(windows[a:b], Quality()) for a, b in [(0, 1), (1, 1), (1, 57), (57, 120)]]

    assert np.allclose(np.concatenate(parts), whole)


def test_scores_from_mean_squares_taken_beforehand_are_the_windows_own() -> None:
    windows = np.concatenate([_windows(60, 8), _windows(5, 9, amplitude=3.0)])
    whole = EnergyScore().update(windows, Quality())
    score = EnergyScore()

    parts = [score.update_mean_square(mean_square(windows[a:b])) for a, b in [(0, 30), (30, 65)]]

    assert np.allclose(np.concatenate(parts), whole)
    assert whole[60] > 10.0  # the first loud window


def test_non_finite_samples_are_counted_and_a_channel_with_none_finite_scores_zero() -> None:
    score, quality = EnergyScore(), Quality()
    score.update(_windows(100, 6), quality)
    windows = _windows(2, 7)
    windows[0, 0, :10] = np.nan
    windows[1, 1, :] = np.inf
    windows[1, 0] *= 4.0

    scores = score.update(windows, quality)

    assert quality.totals == {"anomaly_nonfinite": 74}
    assert np.isfinite(scores).all()
    assert scores[0] < 5.0 and scores[1] > 10.0  # the dead channel neither hides nor fakes one


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="half_life must be > 0"):
        EnergyScore(half_life=0)
