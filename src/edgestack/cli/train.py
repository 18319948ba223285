"""`edgestack train`: fit a model on a frozen dataset version from the hub and register it."""

import json
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from edgestack.appspec import AppSpecError, load_app_spec, load_input_spec
from edgestack.cli.common import (
    AdminOpt,
    HubOpt,
    JobOpt,
    JsonOpt,
    call,
    connect,
    console,
    fail,
    progress_steps,
    request,
    workflow,
)
from edgestack.cli.jobs import submit
from edgestack.protocol import RuleParams, TrainRequest

if TYPE_CHECKING:
    from edgestack.bundle import InputSpec
    from edgestack.learning import Candidate, FitResult

__all__ = ["train"]


def train(
    dataset: Annotated[str, typer.Argument(help="The dataset on the hub.")],
    model: Annotated[
        str, typer.Option(help="A registered trainer, or auto to try the classifiers.")
    ],
    version: Annotated[
        int | None, typer.Option(min=1, help="A frozen version; the latest when left out.")
    ] = None,
    freeze: Annotated[
        bool, typer.Option(help="Freeze what the dataset holds now and train on that version.")
    ] = False,
    params: Annotated[
        str | None,
        typer.Option(help="The trainer's parameters as JSON, e.g. '{\"shape\": [3, 512]}'."),
    ] = None,
    cv: Annotated[
        int, typer.Option(min=0, help="Cross-validate in K folds of the training rows first.")
    ] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the splits and the training.")] = 0,
    budget_s: Annotated[
        float, typer.Option(min=0, help="With --model auto: seconds to try candidates for.")
    ] = 120.0,
    name: Annotated[
        str | None, typer.Option(help="Register as this model; the dataset's name by default.")
    ] = None,
    png: Annotated[Path | None, typer.Option(help="Write the confusion matrix here.")] = None,
    app: Annotated[
        Path | None,
        typer.Option(
            help="The app spec the model is for: an anomaly detector learns its rules' "
            "normal_label as normal (normal when left out)."
        ),
    ] = None,
    spec: Annotated[
        Path | None,
        typer.Option(
            help="The model's input spec (JSON or YAML, or an app spec): its features are "
            "computed from a dataset of raw windows. The dataset's spec when left out."
        ),
    ] = None,
    extractors: Annotated[
        str | None,
        typer.Option(
            help="Instead of --spec: extractors computed from a raw dataset's windows, e.g. "
            "time_stats,band_energies (the default for a trainer that takes no raw windows)."
        ),
    ] = None,
    job: JobOpt = False,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train on a dataset version (the hub's test split held out), print the held-out metrics,
    measure the model's footprint as a device runs it, and register the model; the hub makes
    it the next version of --name."""
    asked = request(
        TrainRequest,
        dataset=dataset,
        model=model,
        version=version,
        freeze=freeze,
        params=_params(params),
        cv=cv,
        seed=seed,
        budget_s=budget_s,
        name=name,
        normal_label=_normal_label(app),
        spec=_spec(spec),
    )
    if extractors is not None:
        if spec is not None:
            raise fail("--extractors: give --spec or --extractors, not both", 2)
        asked = asked.model_copy(
            update={"spec": _raw_spec_with(hub, admin_token, asked, extractors)}
        )
    if job:
        submit(hub, admin_token, asked, as_json, png=png)
        return
    # Imported here: training pulls in numerical libraries the other commands never need.
    from edgestack.learning import confusion_png
    from edgestack.learning.workflow import check_train, train_model

    workflow(lambda: check_train(asked))
    with (
        connect(hub, admin_token) as client,
        progress_steps(f"{model} on {dataset}", as_json=as_json) as advance,
    ):
        trained = workflow(lambda: train_model(client, asked, advance))
    registered, result, leaderboard = trained.model, trained.result, trained.leaderboard
    if png is not None:
        title = f"{registered.name} v{registered.version}: {result.lineage.trainer}"
        try:
            png.write_bytes(confusion_png(result.evaluation, title))
        except OSError as exc:
            raise fail(f"cannot write {png}: {exc}") from None
    if as_json:
        print(
            json.dumps(_summary(registered.model_dump(mode="json"), result, leaderboard), indent=2)
        )
        return
    _print(result, leaderboard)
    console.print(
        f"registered {registered.name} v{registered.version} ({registered.digest[:12]}), "
        f"held out: {len(result.test.y)} rows ({result.split} split)"
        + (f"; confusion matrix in {png}" if png else ""),
        highlight=False,
    )


def _params(raw: str | None) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise fail(
            f"--params: not JSON ({exc}); give an object such as '{{\"epochs\": 5}}'", 2
        ) from None
    if not isinstance(parsed, dict):
        raise fail("--params: give a JSON object such as '{\"epochs\": 5}'", 2)
    return parsed


def _raw_spec_with(
    hub: str | None, admin_token: str | None, asked: TrainRequest, extractors: str
) -> "InputSpec":
    """The spec of `extractors` over the raw windows of the dataset version `asked` trains on."""
    from edgestack.processing import with_extractors

    names = [name.strip() for name in extractors.split(",") if name.strip()]
    with connect(hub, admin_token) as client:
        detail = call(partial(client.dataset, asked.dataset))
    # The version trained on, or the latest; a dataset without versions has one spec to freeze.
    fingerprints = [v.spec for v in detail.versions if asked.version in (None, v.version)]
    raw = detail.specs[(fingerprints or list(detail.specs))[-1]]
    try:
        return with_extractors(raw, names)
    except ValueError as exc:
        raise fail(f"--extractors: {exc}", 2) from None


def _spec(path: Path | None) -> "InputSpec | None":
    if path is None:
        return None
    try:
        return load_input_spec(path)
    except AppSpecError as exc:
        raise fail(f"--spec: {exc}", 2) from None


def _normal_label(app: Path | None) -> str:
    if app is None:
        return RuleParams().normal_label
    try:
        return load_app_spec(app).rules.normal_label
    except AppSpecError as exc:
        raise fail(f"--app: {exc}", 2) from None


def _print(result: "FitResult", leaderboard: "list[Candidate]") -> None:
    if leaderboard:
        board = Table(
            "trainer", "input", "validation macro-F1", "scores", "seconds", "note", title="auto"
        )
        for c in leaderboard:
            score = "-" if c.macro_f1 is None else f"{c.macro_f1:.3f}"
            board.add_row(
                c.trainer, c.input, score, str(len(c.scores)), f"{c.seconds:.1f}", c.error or ""
            )
        console.print(board)
    metrics = result.metrics()
    summary = Table("metric", "value", title=f"{result.lineage.trainer}, held-out rows")
    for key in (
        "accuracy",
        "macro_f1",
        "roc_auc",
        "cv_macro_f1_mean",
        "cv_macro_f1_std",
        "onnx_agreement",
        "n_train",
        "n_test",
    ):
        if key in metrics:
            summary.add_row(key, f"{metrics[key]:.4g}")
    console.print(summary)
    per_class = Table("label", "precision", "recall", "F1", "rows")
    for label, s in result.evaluation.per_class.items():
        per_class.add_row(
            label, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.support)
        )
    console.print(per_class)


def _summary(
    model: dict[str, Any], result: "FitResult", leaderboard: "list[Candidate]"
) -> dict[str, Any]:
    return {
        "model": model,
        "metrics": result.metrics(),
        "confusion": result.evaluation.confusion,
        "split": result.split,
        "leaderboard": [
            {
                "trainer": c.trainer,
                "input": c.input,
                "macro_f1": c.macro_f1,
                "scores": list(c.scores),
                "seconds": c.seconds,
                "error": c.error,
            }
            for c in leaderboard
        ],
    }
