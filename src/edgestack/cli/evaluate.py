"""`edgestack evaluate`: score a registered model on a dataset version, as a device runs it."""

import json
from typing import Annotated

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
    name_at,
    progress_steps,
    request,
    workflow,
)
from edgestack.cli.jobs import submit
from edgestack.protocol import EvaluateRequest

__all__ = ["evaluate"]


def evaluate(
    model: Annotated[
        str, typer.Argument(help="The registered model, MODEL or MODEL@VERSION (the latest).")
    ],
    dataset: Annotated[
        str | None,
        typer.Argument(
            help="DATASET or DATASET@VERSION to score it on: any dataset of its spec, or of raw "
            "windows its features are computed from. The one it was trained on when left out."
        ),
    ] = None,
    version: Annotated[
        int | None, typer.Option(min=1, help="The model version, as MODEL@VERSION says.")
    ] = None,
    dataset_option: Annotated[
        str | None, typer.Option("--dataset", help="The dataset, as DATASET says.")
    ] = None,
    dataset_version: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Its version, as DATASET@VERSION says; the one trained on, or else the latest.",
        ),
    ] = None,
    all_rows: Annotated[
        bool, typer.Option("--all-rows", help="Score every row, not only the test split.")
    ] = False,
    job: JobOpt = False,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score a model through ONNX Runtime on a dataset version's test split (the rows its
    training held out, by default) and print accuracy, macro-F1, per-class scores and the
    confusion matrix."""
    named, version = name_at(model, version, "MODEL", "--version")
    if dataset is not None and dataset_option is not None:
        raise fail("--dataset: the dataset is named twice; give DATASET or --dataset", 2)
    dataset, dataset_version = name_at(
        dataset or dataset_option, dataset_version, "DATASET", "--dataset-version"
    )
    asked = request(
        EvaluateRequest,
        model=named,
        version=version,
        dataset=dataset,
        dataset_version=dataset_version,
        all_rows=all_rows,
    )
    if job:
        submit(hub, admin_token, asked, as_json)
        return
    # Imported here: scoring pulls in numerical libraries the other commands never need.
    from edgestack.learning.workflow import evaluate_model

    with (
        connect(hub, admin_token) as client,
        progress_steps(f"evaluating {model}", as_json=as_json) as advance,
    ):
        evaluated = workflow(lambda: evaluate_model(client, asked, advance))
    scores = evaluated.evaluation
    if as_json:
        summary = {
            "model": evaluated.model.model_dump(mode="json"),
            "dataset": evaluated.dataset,
            "dataset_version": evaluated.dataset_version,
            "rows": evaluated.rows,
            "metrics": scores.metrics(),
            "confusion": scores.confusion,
        }
        print(json.dumps(summary, indent=2))
        return
    title = (
        f"{evaluated.model.name} v{evaluated.model.version} on {evaluated.dataset} "
        f"v{evaluated.dataset_version}, {evaluated.rows} rows"
    )
    table = Table("label", "precision", "recall", "F1", "rows", title=title)
    for label, s in scores.per_class.items():
        table.add_row(label, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.support))
    console.print(table)
    matrix = Table("truth \\ predicted", *scores.labels, title="confusion matrix")
    for label, row in zip(scores.labels, scores.confusion, strict=True):
        matrix.add_row(label, *map(str, row))
    console.print(matrix)
    console.print(f"accuracy {scores.accuracy:.4f}, macro-F1 {scores.macro_f1:.4f}")
