"""Making a trained model fit a device: candidates from graph rewrites (ONNX Runtime's
optimisations, fp16, int8 dynamic and static) and retraining (pruning, distillation), each
measured as a device runs it, judged against an accuracy gate and a device profile.

    baseline = Baseline(onnx, labels, train.x, train.y, lineage, trainer)
    report = optimise(baseline, test.x, test.y, PROFILES["pi"], gate_pts=1.0)
    report.winner, pareto_png(report)
"""

# The built-in optimisers' modules, imported for their registrations.
from edgestack.learning.optimize import graph as graph
from edgestack.learning.optimize import retrain as retrain
from edgestack.learning.optimize.measure import Measurement, MeasurementError, measure
from edgestack.learning.optimize.optimiser import OPTIMISERS, Baseline, NotApplicable, Optimiser
from edgestack.learning.optimize.plot import pareto_png
from edgestack.learning.optimize.selection import (
    DEFAULT_OPTIMISERS,
    TIE_FLOOR_MS,
    TIE_SHARE,
    Candidate,
    Report,
    Verdict,
    build,
    judge,
    optimise,
)

__all__ = [
    "DEFAULT_OPTIMISERS",
    "OPTIMISERS",
    "TIE_FLOOR_MS",
    "TIE_SHARE",
    "Baseline",
    "Candidate",
    "Measurement",
    "MeasurementError",
    "NotApplicable",
    "Optimiser",
    "Report",
    "Verdict",
    "build",
    "judge",
    "measure",
    "optimise",
    "pareto_png",
]
