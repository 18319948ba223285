"""Offload gates, their calibration and the per-window decision, on probability rows."""

from typing import get_args

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edgestack.offload import calibrate, calibrated, hardness, to_offload
from edgestack.protocol import BundleRef, OffloadGate, OffloadPolicy

GATES: tuple[OffloadGate, ...] = get_args(OffloadGate)


def _held_out(windows: int, labels: int = 4, seed: int = 0) -> np.ndarray:
    # Softmax of spread logits: most windows are clear, a tail is not, as a model's output.
    logits = np.random.default_rng(seed).normal(scale=3.0, size=(windows, labels))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("gate", GATES)
def test_every_gate_ranks_a_sure_window_below_a_doubtful_one_below_a_guess(
    gate: OffloadGate,
) -> None:
    rows = np.array([[0.34, 0.33, 0.33], [0.98, 0.01, 0.01], [0.6, 0.3, 0.1]])

    scores = hardness(rows, gate)

    assert list(np.argsort(scores)) == [1, 2, 0]


@pytest.mark.parametrize("gate", GATES)
def test_a_certain_window_scores_0_and_only_margin_and_entropy_reach_1_on_a_tie(
    gate: OffloadGate,
) -> None:
    scores = hardness(np.array([[0.0, 1.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]]), gate)

    assert scores[0] == pytest.approx(0.0)
    assert scores[1] == pytest.approx(0.75 if gate == "confidence" else 1.0)


def test_margin_and_entropy_see_what_the_top_probability_alone_does_not() -> None:
    torn = np.array([[0.5, 0.5, 0.0]])  # two labels alike
    spread = np.array([[0.5, 0.25, 0.25]])  # one label ahead, the rest alike

    assert hardness(torn, "confidence") == pytest.approx(hardness(spread, "confidence"))
    assert hardness(torn, "margin") > hardness(spread, "margin")
    assert hardness(torn, "entropy") < hardness(spread, "entropy")


@pytest.mark.parametrize("gate", GATES)
@pytest.mark.parametrize("target", [0.05, 0.2, 0.5, 1.0])
def test_calibration_offloads_the_target_share_of_held_out_windows_within_one(
    gate: OffloadGate, target: float
) -> None:
    held_out = _held_out(997)

    threshold = calibrate(held_out, target, gate)
    sent = int(to_offload(held_out, gate, threshold).sum())

    assert abs(sent - target * len(held_out)) <= 1


@pytest.mark.parametrize("gate", GATES)
def test_a_calibrated_threshold_sends_about_the_target_share_of_new_windows(
    gate: OffloadGate,
) -> None:
    threshold = calibrate(_held_out(4000, seed=1), 0.1, gate)

    share = to_offload(_held_out(4000, seed=2), gate, threshold).mean()

    assert 0.08 <= share <= 0.12


def test_a_calibrated_policy_carries_its_threshold_and_keeps_the_rest() -> None:
    policy = OffloadPolicy(
        model=BundleRef(name="big", version=1, digest="b" * 64),
        gate="entropy",
        target_fraction=0.25,
        tier="cloud",
    )
    held_out = _held_out(400)

    tuned = calibrated(policy, held_out)

    assert tuned.threshold == calibrate(held_out, 0.25, "entropy")
    assert tuned.model_copy(update={"threshold": None}) == policy
    assert OffloadPolicy.model_validate(tuned.model_dump()) == tuned


@pytest.mark.parametrize(
    ("probabilities", "target", "field"),
    [
        (np.array([[0.5, np.nan]]), 0.1, "probabilities"),
        (np.array([0.5, 0.5]), 0.1, "probabilities"),
        (np.empty((0, 3)), 0.1, "probabilities"),
        (np.array([[0.5, 0.5]]), 0.0, "target_fraction"),
        (np.array([[0.5, 0.5]]), 1.5, "target_fraction"),
    ],
)
def test_bad_calibration_input_is_refused_naming_it(
    probabilities: np.ndarray, target: float, field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        calibrate(probabilities, target, "margin")


_ROWS = st.integers(1, 40).flatmap(
    lambda n: st.integers(1, 6).flatmap(
        lambda k: arrays(
            np.float64,
            (n, k),
            elements=st.one_of(
                st.just(0.0), st.floats(0, 1), st.floats(-1e300, 1e300, allow_subnormal=True)
            ),
        )
    )
)


@settings(max_examples=300, deadline=None)
@given(rows=_ROWS, gate=st.sampled_from(GATES), target=st.floats(1e-6, 1.0))
def test_calibration_of_any_rows_sends_at_least_the_target_share(
    rows: np.ndarray, gate: OffloadGate, target: float
) -> None:
    scores = hardness(rows, gate)
    threshold = calibrate(rows, target, gate)

    sent = int(to_offload(rows, gate, threshold).sum())

    assert np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()
    assert 0 <= threshold <= 1
    # Ties can only add windows at the threshold; fewer than the target never go.
    assert sent >= max(1, round(target * len(rows)))
    assert threshold in scores  # the score of the least hard window that goes


@settings(max_examples=200, deadline=None)
@given(
    rows=_ROWS,
    gate=st.sampled_from(GATES),
    low=st.floats(0, 1),
    high=st.floats(0, 1),
)
def test_a_higher_threshold_never_offloads_a_window_a_lower_one_keeps(
    rows: np.ndarray, gate: OffloadGate, low: float, high: float
) -> None:
    low, high = sorted((low, high))

    at_low = to_offload(rows, gate, low)
    at_high = to_offload(rows, gate, high)

    assert not (at_high & ~at_low).any()


def test_an_unknown_gate_is_refused_naming_the_gates() -> None:
    with pytest.raises(ValueError, match="gate: 'loss' is no gate; choose confidence"):
        hardness(np.array([[0.5, 0.5]]), "loss")  # type: ignore[arg-type]
