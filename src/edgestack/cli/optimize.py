"""`edgestack optimize`: make a registered model fit a device profile and register the best
candidate as the model's next version."""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from edgestack.cli.common import (
    AdminOpt,
    HubOpt,
    JobOpt,
    JsonOpt,
    connect,
    console,
    fail,
    progress_steps,
    request,
    workflow,
)
from edgestack.cli.jobs import submit
from edgestack.profiles import PROFILES
from edgestack.protocol import ModelView, OptimiseRequest

if TYPE_CHECKING:
    from edgestack.learning.optimize import Report

__all__ = ["optimize"]

_MB = 1024 * 1024


def optimize(
    model: Annotated[str, typer.Argument(help="The registered model.")],
    profile: Annotated[str, typer.Option(help=f"The device profile: {', '.join(PROFILES)}.")],
    version: Annotated[
        int | None, typer.Option(min=1, help="The model version; the latest when left out.")
    ] = None,
    gate_pts: Annotated[
        float, typer.Option(min=0, help="Accuracy points a candidate may lose.")
    ] = 1.0,
    png: Annotated[Path | None, typer.Option(help="Write the Pareto plot here.")] = None,
    job: JobOpt = False,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build fp32, fp16, int8 and pruned or distilled candidates of a model, measure each on
    its dataset's held-out rows, and register the best that fits --profile.

    The registry holds ONNX only, so the model is first refitted from its lineage (dataset
    version, trainer, settings, seed) for pruning and distillation and for the training rows
    that calibrate int8; the held-out rows are the ones its training held out."""
    asked = request(
        OptimiseRequest, model=model, profile=profile, version=version, gate_pts=gate_pts
    )
    if job:
        submit(hub, admin_token, asked, as_json, png=png)
        return
    from edgestack.learning.optimize import pareto_png
    from edgestack.learning.workflow import optimise_model

    with (
        connect(hub, admin_token) as client,
        progress_steps(f"optimising {model}", as_json=as_json) as advance,
    ):
        optimised = workflow(lambda: optimise_model(client, asked, advance))
    parent, report, registered = optimised.parent, optimised.report, optimised.model
    if png is not None:
        title = f"{model} v{parent.version} for {profile}"
        try:
            png.write_bytes(pareto_png(report, title=title))
        except OSError as exc:
            raise fail(f"cannot write {png}: {exc}") from None
    if as_json:
        print(json.dumps(_summary(report, registered), indent=2))
    else:
        console.print(_table(report, f"{model} v{parent.version} for {profile}"))
        if registered is None:
            console.print(f"[yellow]no candidate passes the gate and fits {profile}[/]")
        else:
            lineage = registered.manifest.lineage
            console.print(
                f"registered {registered.name} v{registered.version} ({registered.digest[:12]}), "
                f"optimised by {lineage.optimisation if lineage else '-'}",
                highlight=False,
            )
    if registered is None:
        raise typer.Exit(1)


def _table(report: "Report", title: str) -> Table:
    table = Table(
        "candidate", "size", "peak RAM", "p50 ms", "p99 ms", "accuracy", "Δacc pts", "fits",
        "verdict", title=title,
    )  # fmt: skip
    for v in report.verdicts:
        m = v.candidate.measurement
        cells = (
            [
                f"{m.footprint.model_bytes / 1024:.1f} kB",
                f"{m.footprint.peak_ram_bytes / _MB:.1f} MB",
                f"{m.footprint.latency_ms_p50:.3f}",
                f"{m.footprint.latency_ms_p99:.3f}",
                f"{100 * m.accuracy:.2f}%",
                f"{v.delta_pts:+.2f}",
                "yes" if v.fits else "no",
            ]
            if m is not None
            else ["-"] * 7
        )
        table.add_row(v.candidate.name, *cells, f"{v.status}: {v.reason}")
    return table


def _summary(report: "Report", registered: ModelView | None) -> dict[str, Any]:
    return {
        "registered": registered.model_dump(mode="json") if registered else None,
        "candidates": [
            {
                "name": v.candidate.name,
                "status": v.status,
                "reason": v.reason,
                "delta_pts": v.delta_pts,
                "fits": v.fits,
                "accuracy": v.candidate.measurement.accuracy if v.candidate.measurement else None,
                "footprint": (
                    v.candidate.measurement.footprint.model_dump()
                    if v.candidate.measurement
                    else None
                ),
            }
            for v in report.verdicts
        ],
    }
