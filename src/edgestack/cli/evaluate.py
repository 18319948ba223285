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
    progress_steps,
    request,
    workflow,
)
from edgestack.cli.jobs import submit
from edgestack.protocol import EvaluateRequest

__all__ = ["evaluate"]


def evaluate(
    model: Annotated[str, typer.Argument(help="The registered model.")],
    version: Annotated[
        int | None, typer.Option(min=1, help="The model version; the latest when left out.")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="The dataset; the one it was trained on when left out.")
    ] = None,
    dataset_version: Annotated[
        int | None,
        typer.Option(min=1, help="Its version: the one trained on, or else the latest."),
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
    training held out, by default) and print accuracy, macro-F1 and per-class scores."""
    asked = request(
        EvaluateRequest,
        model=model,
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
    console.print(f"accuracy {scores.accuracy:.4f}, macro-F1 {scores.macro_f1:.4f}")
