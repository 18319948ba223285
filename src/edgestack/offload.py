"""Which windows a device offloads: gates that score how hard a window is from its model's
class probabilities, the threshold that sends a chosen share of them, and the decision.

Pure numpy on whole batches, no I/O: the hot path calls it on every chunk.

    threshold = calibrate(held_out_probabilities, 0.1, "margin")
    send = to_offload(probabilities, "margin", threshold)   # one bool per window
"""

import numpy as np

from edgestack.protocol import OffloadGate, OffloadPolicy

__all__ = ["calibrate", "calibrated", "hardness", "to_offload"]


def hardness(probabilities: np.ndarray, gate: OffloadGate) -> np.ndarray:
    """How hard each window is, from 0 (sure) to 1, by `gate` (see `OffloadGate`), from one row
    of class probabilities per window. Rows are read as a distribution: negative values count
    as 0 and each row is scaled to sum to 1 (a row of zeros reads as all labels alike)."""
    p = _distributions(probabilities)
    if gate == "confidence":
        return 1.0 - p.max(axis=1)
    if gate == "margin":
        if p.shape[1] < 2:
            return np.zeros(len(p))
        top_two = np.partition(p, -2, axis=1)[:, -2:]
        return 1.0 - (top_two[:, 1] - top_two[:, 0])
    if gate == "entropy":
        if p.shape[1] < 2:
            return np.zeros(len(p))
        logs = np.log(np.where(p > 0, p, 1.0))
        # Rounding can carry a uniform row a hair past its bound.
        return np.clip(-(p * logs).sum(axis=1) / np.log(p.shape[1]), 0.0, 1.0)
    raise ValueError(f"gate: '{gate}' is no gate; choose confidence, margin or entropy")


def calibrate(probabilities: np.ndarray, target_fraction: float, gate: OffloadGate) -> float:
    """The threshold that offloads `target_fraction` of these held-out windows (at least one),
    within one window where their scores do not tie: the score of the least hard window
    that still goes."""
    if not 0 < target_fraction <= 1:
        raise ValueError(
            f"target_fraction: {target_fraction} is no share of windows; give one in (0, 1]"
        )
    scores = hardness(probabilities, gate)
    if not len(scores):
        raise ValueError("probabilities: no held-out windows; calibrate on at least one")
    going = max(1, round(target_fraction * len(scores)))
    return float(np.partition(scores, len(scores) - going)[len(scores) - going])


def calibrated(policy: OffloadPolicy, probabilities: np.ndarray) -> OffloadPolicy:
    """`policy` with its threshold calibrated on held-out windows' `probabilities` for its
    gate and target fraction."""
    threshold = calibrate(probabilities, policy.target_fraction, policy.gate)
    return policy.model_copy(update={"threshold": threshold})


def to_offload(probabilities: np.ndarray, gate: OffloadGate, threshold: float) -> np.ndarray:
    """For each window, whether it goes to the server (True) or is answered here: those whose
    `gate` score reaches `threshold`."""
    return hardness(probabilities, gate) >= threshold


def _distributions(probabilities: np.ndarray) -> np.ndarray:
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(
            f"probabilities: shape {p.shape}, expected (windows, labels) with a label or more"
        )
    if not np.isfinite(p).all():
        raise ValueError("probabilities: holds NaN or infinity; pass a model's probabilities")
    p = np.clip(p, 0.0, None)
    with np.errstate(over="ignore"):
        totals = p.sum(axis=1, keepdims=True)
    # A row of zeros, or one whose sum overflows, cannot be scaled: it reads as all alike.
    usable = (totals > 0) & np.isfinite(totals)
    scaled = p / np.where(usable, totals, 1.0)
    return np.where(usable, scaled, 1.0 / p.shape[1])
