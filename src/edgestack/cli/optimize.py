"""`edgestack optimize`: make a registered model fit a device profile and register the best
candidate as the model's next version."""

import json
import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from edgestack.bundle import Bundle, Lineage
from edgestack.cli.common import (
    AdminOpt,
    HubOpt,
    JsonOpt,
    call,
    connect,
    console,
    fail,
    progress_bar,
)
from edgestack.client import HubClient
from edgestack.profiles import PROFILES
from edgestack.protocol import ModelView

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
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build fp32, fp16, int8 and pruned or distilled candidates of a model, measure each on
    its dataset's held-out rows, and register the best that fits --profile.

    The registry holds ONNX only, so the model is first refitted from its lineage (dataset
    version, trainer, settings, seed) for pruning and distillation and for the training rows
    that calibrate int8; the held-out rows are the ones its training held out."""
    from edgestack.dataset import DatasetFileError, read_dataset
    from edgestack.learning import fit
    from edgestack.learning.optimize import Baseline, optimise, pareto_png

    if profile not in PROFILES:
        raise fail(f"--profile {profile!r}: unknown; known: {', '.join(PROFILES)}", 2)
    for logger in ("torch.onnx", "onnxscript"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    with connect(hub, admin_token) as client:
        parent = _model(client, model, version)
        lineage = parent.manifest.lineage
        if lineage is None or lineage.dataset is None or lineage.dataset_version is None:
            raise fail(
                f"{model} v{parent.version} records no dataset in its lineage; optimize "
                "measures on the rows its training held out: train it with edgestack train"
            )
        onnx = Bundle.unpack(call(partial(client.bundle, parent.digest))).model
        data = call(partial(client.dataset_parquet, lineage.dataset, lineage.dataset_version))
        try:
            table = read_dataset(data)
        except DatasetFileError as exc:
            raise fail(f"dataset {lineage.dataset} v{lineage.dataset_version}: {exc}") from None
        with progress_bar(to=Console(stderr=True) if as_json else console) as progress:
            task = progress.add_task(f"refitting {lineage.trainer}", total=None)

            def advance(what: str, done: int, total: int) -> None:
                progress.update(task, description=what, completed=done, total=total)

            refit = fit(
                lineage.trainer,
                table.features,
                table.labels,
                params=lineage.params,
                seed=lineage.seed,
                test=table.test,
            )
            baseline = Baseline(
                onnx, parent.manifest.labels, refit.train.x, refit.train.y, lineage, refit.trainer
            )
            report = optimise(
                baseline,
                refit.test.x,
                refit.test.y,
                PROFILES[profile],
                gate_pts=gate_pts,
                progress=advance,
            )
        registered = _register(client, parent, report, profile) if report.winner else None
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


def _model(client: HubClient, name: str, version: int | None) -> ModelView:
    versions = sorted((m for m in call(client.models) if m.name == name), key=lambda m: m.version)
    if not versions:
        raise fail(f"no model {name!r} is registered; see edgestack models")
    if version is None:
        return versions[-1]
    for m in versions:
        if m.version == version:
            return m
    known = ", ".join(f"v{m.version}" for m in versions)
    raise fail(f"--version {version}: {name} has {known}")


def _register(client: HubClient, parent: ModelView, report: "Report", profile: str) -> ModelView:
    winner = report.winner
    assert winner is not None and winner.candidate.measurement is not None  # chosen: measured
    measured = winner.candidate.measurement
    lineage = parent.manifest.lineage or Lineage(trainer="unknown")
    bundle = Bundle.create(
        name=parent.name,
        labels=parent.manifest.labels,
        input=parent.manifest.input,
        model=winner.candidate.model or b"",
        metrics=parent.manifest.metrics | {"accuracy": measured.accuracy},
        footprint=measured.footprint,
        lineage=lineage.model_copy(
            update={"parent": parent.digest, "optimisation": winner.candidate.name}
        ),
        reference=parent.manifest.reference,  # same inputs, so the same drift reference
    )
    return call(partial(client.register_model, bundle.pack()))


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
