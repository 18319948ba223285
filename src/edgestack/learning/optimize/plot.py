"""The trade-off of an optimisation run, to look at: accuracy against p99 latency."""

import io

from matplotlib.figure import Figure

from edgestack.learning.optimize.selection import Report, Verdict

__all__ = ["pareto_png"]

_COLOURS = {"parent": "tab:grey", "chosen": "tab:green", "passed": "tab:blue"}


def pareto_png(report: Report, *, title: str = "") -> bytes:
    """A PNG of every measured model: accuracy against p99 latency, marker area in proportion
    to the file's size, rejected ones hollow, the chosen one green, and the Pareto front (no
    other model both more accurate and faster) as a dashed line."""
    measured = [v for v in report.verdicts if v.candidate.measurement is not None]
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.subplots()
    largest = max((_size(v) for v in measured), default=1) or 1
    for v in measured:
        colour = _COLOURS.get(v.status, "tab:red")
        area = 40 + 460 * _size(v) / largest
        x, y = _point(v)
        axes.scatter(
            [x],
            [y],
            s=area,
            facecolors="none" if v.status == "rejected" else colour,
            edgecolors=colour,
            linewidths=1.5,
        )
        axes.annotate(v.candidate.name, (x, y), textcoords="offset points", xytext=(6, 6))
    front = _front(measured)
    if len(front) > 1:
        axes.step(*zip(*front, strict=True), where="post", linestyle="--", color="tab:grey")
    axes.set_xlabel("p99 latency per window, ms (one thread, batch 1)")
    axes.set_ylabel("held-out accuracy, %")
    axes.set_title(title or "optimisation candidates: marker area is model size")
    axes.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _point(v: Verdict) -> tuple[float, float]:
    m = v.candidate.measurement
    assert m is not None  # only measured verdicts are drawn
    return m.footprint.latency_ms_p99, 100 * m.accuracy


def _size(v: Verdict) -> int:
    m = v.candidate.measurement
    return m.footprint.model_bytes if m is not None else 0


def _front(measured: list[Verdict]) -> list[tuple[float, float]]:
    """Points no other point beats on both axes, fastest first."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(_point(v) for v in measured):
        if not front or y > front[-1][1]:
            front.append((x, y))
    return front
