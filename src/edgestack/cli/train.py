"""`edgestack train`: fit a model on a frozen dataset version from the hub and register it."""

import json
import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.table import Table

from edgestack.appspec import AppSpecError, load_app_spec
from edgestack.bundle import InputSpec, Name
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
from edgestack.protocol import ModelView, RuleParams

if TYPE_CHECKING:
    from edgestack.learning import Candidate, FitResult

__all__ = ["train"]

_AUTO = "auto"


def train(
    dataset: Annotated[str, typer.Argument(help="The dataset on the hub.")],
    model: Annotated[
        str, typer.Option(help="A registered trainer, or auto to try the classifiers.")
    ],
    version: Annotated[
        int | None, typer.Option(min=1, help="A frozen version; the latest when left out.")
    ] = None,
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
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train on a dataset version (the hub's test split held out), print the held-out metrics,
    measure the model's footprint as a device runs it, and register the model; the hub makes
    it the next version of --name."""
    # Imported here: training pulls in numerical libraries the other commands never need.
    from edgestack.dataset import DatasetFileError, read_dataset
    from edgestack.learning import TRAINERS, auto, confusion_png, fit
    from edgestack.registry import RegistryError

    # The exporters log each opset conversion they make; the pinned opset makes them routine.
    # torch resets its own top-level loggers when imported, so the exporter's is named.
    for logger in ("torch.onnx._internal.exporter", "onnxscript"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    chosen = _params(params)
    if model != _AUTO:
        try:
            TRAINERS.get(model)
        except RegistryError as exc:
            raise fail(f"--model: {exc}, or auto", 2) from None
        try:
            TRAINERS.validate(model, chosen)
        except RegistryError as exc:
            raise fail(f"--params: {exc}", 2) from None
    elif chosen:
        raise fail("--params: auto tries each candidate with its defaults; leave it out", 2)
    normal_label = _normal_label(app)
    target = _model_name(name or dataset)
    with connect(hub, admin_token) as client:
        if version is None:
            version = _latest(client, dataset)
        data = call(partial(client.dataset_parquet, dataset, version))
        try:
            table = read_dataset(data)
        except DatasetFileError as exc:
            raise fail(f"dataset {dataset} v{version}: {exc}") from None
        spec, x, labels, test = table.spec, table.features, table.labels, table.test
        leaderboard: list[Candidate] = []
        # Beside JSON the bar goes to stderr, so stdout stays one document.
        with progress_bar(to=Console(stderr=True) if as_json else console) as progress:
            task = progress.add_task(f"{model} on {dataset} v{version}", total=None)

            def advance(what: str, done: int, total: int) -> None:
                progress.update(task, description=what, completed=done, total=total)

            try:
                if model == _AUTO:
                    found = auto(
                        x,
                        labels,
                        budget_s=budget_s,
                        seed=seed,
                        test=test,
                        dataset=dataset,
                        dataset_version=version,
                        progress=advance,
                    )
                    result, leaderboard = found.best, found.leaderboard
                else:
                    result = fit(
                        model,
                        x,
                        labels,
                        params=chosen,
                        seed=seed,
                        test=test,
                        cv=cv,
                        dataset=dataset,
                        dataset_version=version,
                        normal_label=normal_label,
                        progress=advance,
                    )
            except ValueError as exc:
                raise fail(str(exc), 2) from None
        registered = _register(client, target, spec, result)
    if png is not None:
        title = f"{target} v{registered.version}: {result.lineage.trainer}"
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


def _model_name(name: str) -> str:
    """`name`, if a model may be registered under it: checked before training, which may
    take minutes."""
    try:
        return TypeAdapter(Name).validate_python(name)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise fail(f"--name {name!r}: {error['msg']}; give a model name", 2) from None


def _normal_label(app: Path | None) -> str:
    if app is None:
        return RuleParams().normal_label
    try:
        return load_app_spec(app).rules.normal_label
    except AppSpecError as exc:
        raise fail(f"--app: {exc}", 2) from None


def _latest(client: HubClient, dataset: str) -> int:
    versions = call(partial(client.dataset, dataset)).versions
    if not versions:
        raise fail(
            f"dataset '{dataset}' has no versions yet; freeze one with: "
            f"edgestack data freeze {dataset}"
        )
    return versions[-1].version


def _register(client: HubClient, name: str, spec: InputSpec, result: "FitResult") -> ModelView:
    """Measure `result` and register it; the hub answers the version it became."""
    from edgestack.learning import package
    from edgestack.learning.optimize import MeasurementError

    try:
        bundle = package(result, name=name, spec=spec)
    except MeasurementError as exc:
        raise fail(f"ONNX Runtime cannot run the trained model: {exc}") from None
    return call(partial(client.register_model, bundle.pack()))


def _print(result: "FitResult", leaderboard: "list[Candidate]") -> None:
    if leaderboard:
        board = Table("trainer", "validation macro-F1", "seconds", "note", title="auto")
        for c in leaderboard:
            score = "-" if c.macro_f1 is None else f"{c.macro_f1:.3f}"
            board.add_row(c.trainer, score, f"{c.seconds:.1f}", c.error or "")
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
            {"trainer": c.trainer, "macro_f1": c.macro_f1, "seconds": c.seconds, "error": c.error}
            for c in leaderboard
        ],
    }
