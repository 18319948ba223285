"""Building every candidate from one model, measuring each, and choosing the one to ship.

A candidate passes when it loses at most `gate_pts` points of held-out accuracy against the
model it was made from and its footprint fits the device profile. Among those that pass, the
fastest wins: latency is what a device's budget is tightest on. Latencies closer than their
tie band are ties: the measured noise (`Measurement.p99_noise_ms`), but never less than
`TIE_FLOOR_MS` or `TIE_SHARE` of the lower latency, since a bootstrap of one run's calls
cannot see what another process on the machine does to the next run. Ties go to the higher
accuracy, then the smaller file, then the candidate tried first, never to the lower p99: two
runs on the same inputs measure different latencies and must still choose the same one.

    report = optimise(baseline, test.x, test.y, PROFILES["pi"])
    report.winner.candidate.name if report.winner else "nothing fits"
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from edgestack.learning._onnx import with_labels
from edgestack.learning.fit import Progress
from edgestack.learning.optimize.measure import Measurement, measure
from edgestack.learning.optimize.optimiser import OPTIMISERS, Baseline, NotApplicable
from edgestack.profiles import DeviceProfile

__all__ = [
    "DEFAULT_OPTIMISERS",
    "TIE_FLOOR_MS",
    "TIE_SHARE",
    "Candidate",
    "Report",
    "Verdict",
    "build",
    "judge",
    "optimise",
]

DEFAULT_OPTIMISERS = ("fp32", "fp16", "int8_dynamic", "int8_static", "pruned", "distilled")
"""What `optimise` tries unless told otherwise, with each optimiser's default settings."""

TIE_FLOOR_MS = 0.05
"""Latencies closer than this are ties whatever their noise: small models run in hundredths
of a millisecond, where a scheduler's whim moves the p99 by more than the models differ."""

TIE_SHARE = 0.05
"""Latencies within this share of the lower one are ties whatever their noise."""

Status = Literal["parent", "chosen", "passed", "rejected", "not applicable", "failed"]


@dataclass(frozen=True)
class Candidate:
    """One optimiser's model and its measurement, or why there is none: `problem` starts
    `not applicable:` when the model offered it nothing to do, `failed:` when it broke."""

    name: str
    model: bytes | None = None
    measurement: Measurement | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Verdict:
    """What became of a candidate and why; `delta_pts` is its accuracy minus the parent's in
    percentage points, `fits` whether the profile takes its footprint."""

    candidate: Candidate
    status: Status
    reason: str
    delta_pts: float | None = None
    fits: bool | None = None


@dataclass(frozen=True)
class Report:
    """The parent model's verdict first, then each candidate's in the order tried."""

    verdicts: list[Verdict]

    @property
    def winner(self) -> Verdict | None:
        return next((v for v in self.verdicts if v.status == "chosen"), None)


def build(
    name: str, baseline: Baseline, x: np.ndarray, y: np.ndarray, *, runs: int = 200
) -> Candidate:
    """The candidate of the registered optimiser `name`, measured on held-out rows; never
    raises for a candidate that cannot be built or run, it says why in `problem`."""
    try:
        model = with_labels(OPTIMISERS.build(name).apply(baseline), baseline.labels)
        return Candidate(name, model, measure(model, x, y, runs=runs))
    except NotApplicable as exc:
        return Candidate(name, problem=f"not applicable: {exc}")
    # Converters and quantisers fail in ways of their own; one broken candidate must not cost
    # the others their run.
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return Candidate(name, problem=f"failed: {type(exc).__name__}: {first}")


def judge(
    parent: Candidate,
    candidates: Sequence[Candidate],
    profile: DeviceProfile,
    *,
    gate_pts: float = 1.0,
) -> Report:
    """Verdicts on measured `candidates` against the measured `parent`: rejected past the
    accuracy gate or the profile's budgets, else passed; the best that passed is chosen."""
    if parent.measurement is None:
        raise ValueError(f"parent: not measured ({parent.problem}); measure it first")
    if gate_pts < 0:
        raise ValueError(f"gate_pts: {gate_pts}; give the accuracy points a candidate may lose")
    reference = parent.measurement.accuracy
    verdicts = []
    for c in candidates:
        if c.measurement is None:
            status: Status = (
                "not applicable" if c.problem and c.problem.startswith("not ") else "failed"
            )
            verdicts.append(Verdict(c, status, (c.problem or "").split(": ", 1)[-1]))
            continue
        delta = 100 * (c.measurement.accuracy - reference)
        refused = profile.refuses(c.measurement.footprint)
        if delta < -gate_pts:
            reason = f"loses {-delta:.2f} accuracy points, the gate allows {gate_pts:g}"
            verdicts.append(Verdict(c, "rejected", reason, delta, not refused))
        elif refused:
            verdicts.append(Verdict(c, "rejected", "; ".join(refused), delta, False))
        else:
            verdicts.append(Verdict(c, "passed", f"fits {profile.name}", delta, True))
    passed = [v for v in verdicts if v.status == "passed"]
    if passed:
        # min keeps the first of equals: the candidate tried first, never the lower p99.
        best = min(_fastest(passed), key=_rank)
        verdicts[verdicts.index(best)] = Verdict(
            best.candidate, "chosen", _why_chosen(len(passed)), best.delta_pts, True
        )
    fits = not profile.refuses(parent.measurement.footprint)
    head = Verdict(parent, "parent", "the model as trained", 0.0, fits)
    return Report([head, *verdicts])


def optimise(
    baseline: Baseline,
    x: np.ndarray,
    y: np.ndarray,
    profile: DeviceProfile,
    *,
    gate_pts: float = 1.0,
    optimisers: Sequence[str] = DEFAULT_OPTIMISERS,
    runs: int = 200,
    progress: Progress | None = None,
) -> Report:
    """Measure the baseline, build and measure a candidate per optimiser, and judge them all
    on held-out rows `x` (float32 `(n, F)`) with class indices `y`."""
    for name in optimisers:
        OPTIMISERS.get(name, where="optimisers")
    total = len(optimisers) + 1
    parent = Candidate("parent", baseline.onnx, measure(baseline.onnx, x, y, runs=runs))
    if progress is not None:
        progress("measured the parent", 1, total)
    candidates = []
    for i, name in enumerate(optimisers):
        candidates.append(build(name, baseline, x, y, runs=runs))
        if progress is not None:
            progress(f"tried {name}", i + 2, total)
    return judge(parent, candidates, profile, gate_pts=gate_pts)


def _measured(verdict: Verdict) -> Measurement:
    m = verdict.candidate.measurement
    assert m is not None  # only measured candidates pass
    return m


def _fastest(passed: list[Verdict]) -> list[Verdict]:
    """The candidates whose p99 latency is the lowest, or within the tie band of it."""
    floor = _measured(min(passed, key=lambda v: _measured(v).footprint.latency_ms_p99))
    return [
        v
        for v in passed
        if _measured(v).footprint.latency_ms_p99 - floor.footprint.latency_ms_p99
        <= _band(_measured(v), floor)
    ]


def _band(measured: Measurement, floor: Measurement) -> float:
    """How far above the lowest latency `floor` a latency still ties with it."""
    return max(
        measured.p99_noise_ms,
        floor.p99_noise_ms,
        TIE_FLOOR_MS,
        TIE_SHARE * floor.footprint.latency_ms_p99,
    )


def _rank(verdict: Verdict) -> tuple[float, int]:
    m = _measured(verdict)
    return (-m.accuracy, m.footprint.model_bytes)


def _why_chosen(passed: int) -> str:
    if passed == 1:
        return "the only candidate that passes the gate and fits"
    return (
        f"lowest p99 latency of the {passed} that pass the gate and fit; latencies within "
        f"their noise, {TIE_FLOOR_MS:g} ms or {TIE_SHARE:.0%} of the lowest tie, and ties go "
        "to the most accurate, then the smallest, then the first tried"
    )
