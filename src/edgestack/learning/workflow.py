"""What `edgestack train`, `optimize` and `evaluate` do, as library calls: the CLI, the demo
and the hub's jobs all run these, so there is one path and it is the one users run.

    with HubClient(url, admin_token=token) as client:
        trained = train_model(client, TrainRequest(dataset="motors", model="random_forest"))
        optimised = optimise_model(client, OptimiseRequest(model="motors", profile="pi"))
        evaluated = evaluate_model(client, EvaluateRequest(model="motors"))
        exported = export_model(client, "motors", out=Path("firmware/model"))

The requests are the wire's (`edgestack.protocol`), so a hub job carries one as it is.

The hub numbers each registered version; a workflow never guesses it.
"""

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from edgestack.bundle import Bundle, InputSpec, Lineage, SplitPlan
from edgestack.client import HubClient
from edgestack.dataset import (
    DatasetFileError,
    DatasetTable,
    SpecMismatch,
    features_for,
    raw_shape,
    read_dataset,
)
from edgestack.learning.evaluate import Evaluation, evaluate
from edgestack.learning.fit import Candidate, FitResult, Progress, Rows, auto, fit
from edgestack.learning.mcu import (
    C_TRAINERS,
    CExport,
    ExportError,
    export_c,
    features_c,
    sources_tar,
)
from edgestack.learning.optimize import Baseline, MeasurementError, Report, optimise
from edgestack.learning.package import calibrate, package, package_split
from edgestack.learning.split import Link, plan_split
from edgestack.learning.tradeoff import Choice, SplitNet, TierModel, tradeoff
from edgestack.learning.trainer import TRAINERS
from edgestack.learning.zoo.exits import Cnn1dExits
from edgestack.predictor import OnnxPredictor
from edgestack.processing import DEFAULT_EXTRACTORS, with_extractors
from edgestack.profiles import PROFILES
from edgestack.protocol import (
    BundleRef,
    EvaluateRequest,
    ModelView,
    OffloadGate,
    OptimiseRequest,
    TrainRequest,
    slug,
)
from edgestack.registry import RegistryError, field_path
from edgestack.serving import rows_kind

__all__ = [
    "AUTO",
    "Cut",
    "Evaluated",
    "Exported",
    "Optimised",
    "Trained",
    "WorkflowError",
    "check_train",
    "evaluate_model",
    "export_model",
    "held_out_probabilities",
    "optimise_model",
    "split_model",
    "train_model",
]

AUTO: str = TrainRequest.model_fields["model"].default
"""The `TrainRequest.model` that tries each of `AUTO_CANDIDATES` and keeps the best."""


class WorkflowError(Exception):
    """A workflow cannot go on. `usage` is true when the request itself is wrong (a command
    exits 2 for it), false when the hub's data or the model is (exit 1). `field` names the
    request's field at fault; the message then starts with it, so a command can name its own
    option instead."""

    def __init__(
        self, message: str, *, field: str | None = None, usage: bool | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        self.usage = field is not None if usage is None else usage


@dataclass(frozen=True)
class Trained:
    """The registered model, the fit it came from, and `auto`'s leaderboard (empty when one
    trainer was named)."""

    model: ModelView
    result: FitResult
    leaderboard: list[Candidate]


@dataclass(frozen=True)
class Optimised:
    """The model optimised, every candidate's verdict, and the winner as registered (None when
    no candidate passed the gate and fits the profile)."""

    parent: ModelView
    report: Report
    model: ModelView | None


@dataclass(frozen=True)
class Evaluated:
    """How registered `model` did on `rows` rows of version `dataset_version` of `dataset`,
    measured through its ONNX model as a device runs it."""

    model: ModelView
    dataset: str
    dataset_version: int
    rows: int
    evaluation: Evaluation


def check_train(request: TrainRequest) -> str:
    """The model name `request` registers under, once its trainer and parameters are known
    good: checked before anything is downloaded or fitted, which may take minutes."""
    if request.model != AUTO:
        try:
            TRAINERS.get(request.model)
        except RegistryError as exc:
            raise WorkflowError(f"model: {exc}, or {AUTO}", field="model") from None
        _check_params(request.model, request.params)
    elif request.params:
        raise WorkflowError(
            "params: auto tries each candidate with its defaults; leave them out", field="params"
        )
    if request.freeze and request.version is not None:
        raise WorkflowError(
            "version: freeze trains on the version it freezes; leave version out, or freeze "
            "no new one",
            field="version",
        )
    return request.name or slug(request.dataset)


def train_model(
    client: HubClient, request: TrainRequest, progress: Progress | None = None
) -> Trained:
    """Fit `request` on its dataset version (the hub's test split held out), measure the
    model's footprint as a device runs it, and register it with the hub.

    Raises `WorkflowError` for a bad request or dataset, `HubError` when the hub refuses."""
    target = check_train(request)
    _quiet_exporters()
    if request.freeze:
        version = client.freeze(request.dataset).version
    else:
        version = request.version or _latest(client, request.dataset)
    table = _table(client, request.dataset, version)
    spec, rows, params = _inputs(request, table)
    try:
        if request.model == AUTO:
            # A raw table's windows go to the raw-window candidates as they are, beside the
            # features computed from them for the others.
            shape = raw_shape(table.spec)
            found = auto(
                rows,
                table.labels,
                raw=table.features if shape is not None else None,
                shape=shape,
                budget_s=request.budget_s,
                seed=request.seed,
                test=table.test,
                dataset=request.dataset,
                dataset_version=version,
                progress=progress,
            )
            result, leaderboard = found.best, found.leaderboard
        else:
            result = fit(
                request.model,
                rows,
                table.labels,
                params=params,
                seed=request.seed,
                test=table.test,
                cv=request.cv,
                dataset=request.dataset,
                dataset_version=version,
                normal_label=request.normal_label,
                progress=progress,
            )
            leaderboard = []
    except ValueError as exc:
        raise WorkflowError(str(exc), usage=True) from None
    try:
        bundle = package(result, name=target, spec=table.spec if result.input == "raw" else spec)
    except MeasurementError as exc:
        raise WorkflowError(f"ONNX Runtime cannot run the trained model: {exc}") from None
    return Trained(client.register_model(bundle.pack()), result, leaderboard)


def optimise_model(
    client: HubClient, request: OptimiseRequest, progress: Progress | None = None
) -> Optimised:
    """Build fp32, fp16, int8 and pruned or distilled candidates of a registered model,
    measure each on its dataset's held-out rows, and register the best that fits the profile.

    The registry holds ONNX only, so the model is first refitted from its lineage (dataset
    version, trainer, settings, seed) for pruning and distillation and for the training rows
    that calibrate int8; the held-out rows are the ones its training held out.

    Raises `WorkflowError` for a bad request or lineage, `HubError` when the hub refuses."""
    if request.profile not in PROFILES:
        raise WorkflowError(
            f"profile {request.profile!r}: unknown; known: {', '.join(PROFILES)}",
            field="profile",
        )
    _quiet_exporters()
    parent = _onnx(_model(client, request.model, request.version), "optimize")
    lineage = parent.manifest.lineage
    if lineage is None or lineage.dataset is None or lineage.dataset_version is None:
        raise WorkflowError(
            f"{parent.name} v{parent.version} records no dataset in its lineage; optimize "
            "measures on the rows its training held out: train it with edgestack train"
        )
    onnx = Bundle.unpack(client.bundle(parent.digest)).model
    if progress is not None:
        progress(f"refitting {lineage.trainer}", 0, 1)
    refit = _refit(client, parent)
    baseline = Baseline(
        onnx, parent.manifest.labels, refit.train.x, refit.train.y, lineage, refit.trainer
    )
    report = optimise(
        baseline,
        refit.test.x,
        refit.test.y,
        PROFILES[request.profile],
        gate_pts=request.gate_pts,
        progress=progress,
    )
    registered = _register_winner(client, parent, report, refit.test) if report.winner else None
    return Optimised(parent, report, registered)


def _refit(client: HubClient, model: ModelView) -> FitResult:
    """Registered `model` fitted again on the dataset version of its lineage with the same
    trainer, settings and seed: the same training and held-out rows, as it takes them."""
    lineage = model.manifest.lineage
    assert lineage is not None and lineage.dataset is not None  # checked by every caller
    assert lineage.dataset_version is not None
    table = _table(client, lineage.dataset, lineage.dataset_version)
    return fit(
        lineage.trainer,
        _rows(table, model),
        table.labels,
        params=lineage.params,
        seed=lineage.seed,
        test=table.test,
    )


def _check_params(trainer: str, params: dict[str, Any]) -> None:
    """Refuse parameters `trainer` does not take; a `shape` left out is no error, since the
    dataset's raw spec gives it."""
    model = TRAINERS.params(trainer)
    try:
        model.model_validate(params)
    except ValidationError as exc:
        errors = [
            e
            for e in exc.errors()
            if not (
                e["loc"] == ("shape",) and e["type"] == "missing" and "shape" in model.model_fields
            )
        ]
        if errors:
            where = field_path(("params", *errors[0]["loc"]))
            raise WorkflowError(
                f"{where}: {errors[0]['msg']} (trainer {trainer!r} takes: "
                f"{', '.join(model.model_fields)})",
                field="params",
            ) from None


def _inputs(
    request: TrainRequest, table: DatasetTable
) -> tuple[InputSpec, np.ndarray, dict[str, Any]]:
    """The spec a model of `request` is for, its rows of `table`, and the trainer's
    parameters: a trainer taking raw windows (a `shape` parameter) gets a raw table's rows and
    its shape; any other gets features computed from them, of `request.spec` or else
    `DEFAULT_EXTRACTORS`."""
    params = dict(request.params)
    takes_shape = request.model != AUTO and "shape" in TRAINERS.params(request.model).model_fields
    spec = request.spec
    if spec is None:
        raw = raw_shape(table.spec) is not None
        spec = (
            with_extractors(table.spec, DEFAULT_EXTRACTORS)
            if raw and not takes_shape
            else table.spec
        )
    shape = raw_shape(spec)
    if takes_shape and shape is not None:
        params.setdefault("shape", list(shape))
    try:
        return spec, features_for(table, spec), params
    except SpecMismatch as exc:
        raise WorkflowError(f"spec: {exc}", field="spec") from None


def _rows(table: DatasetTable, model: ModelView) -> np.ndarray:
    """`table`'s rows as registered `model` takes them."""
    try:
        return features_for(table, model.manifest.input)
    except SpecMismatch as exc:
        raise WorkflowError(
            f"{model.name} v{model.version} cannot score this dataset: {exc}"
        ) from None


def _quiet_exporters() -> None:
    # The exporters log each opset conversion they make; the pinned opset makes them routine.
    # torch resets its own top-level loggers when imported, so the exporter's is named.
    for logger in ("torch.onnx", "torch.onnx._internal.exporter", "onnxscript"):
        logging.getLogger(logger).setLevel(logging.ERROR)


def _latest(client: HubClient, dataset: str) -> int:
    versions = client.dataset(dataset).versions
    if not versions:
        raise WorkflowError(
            f"dataset '{dataset}' has no versions yet; freeze one with: "
            f"edgestack data freeze {dataset}"
        )
    return versions[-1].version


def _table(client: HubClient, dataset: str, version: int) -> DatasetTable:
    try:
        return read_dataset(client.dataset_parquet(dataset, version))
    except DatasetFileError as exc:
        raise WorkflowError(f"dataset {dataset} v{version}: {exc}") from None


def _model(client: HubClient, name: str, version: int | None) -> ModelView:
    versions = sorted((m for m in client.models() if m.name == name), key=lambda m: m.version)
    if not versions:
        raise WorkflowError(f"no model {name!r} is registered; see edgestack models")
    if version is None:
        return versions[-1]
    for m in versions:
        if m.version == version:
            return m
    known = ", ".join(f"v{m.version}" for m in versions)
    raise WorkflowError(f"version {version}: {name} has {known}", field="version", usage=False)


def _onnx(model: ModelView, action: str) -> ModelView:
    """`model`, refused when it is not ONNX: a C bundle runs in firmware, not here."""
    if model.manifest.target != "onnx":
        raise WorkflowError(
            f"{model.name} v{model.version} is {model.manifest.target.upper()} for a "
            f"microcontroller and {action} runs ONNX models; name the version it was exported "
            "from"
        )
    return model


def _register_winner(
    client: HubClient, parent: ModelView, report: Report, held_out: Rows
) -> ModelView:
    winner = report.winner
    assert winner is not None and winner.candidate.measurement is not None  # chosen: measured
    measured = winner.candidate.measurement
    model = winner.candidate.model or b""
    lineage = parent.manifest.lineage or Lineage(trainer="unknown")
    bundle = Bundle.create(
        name=parent.name,
        labels=parent.manifest.labels,
        input=parent.manifest.input,
        model=model,
        metrics=parent.manifest.metrics | {"accuracy": measured.accuracy},
        footprint=measured.footprint,
        lineage=lineage.model_copy(
            update={"parent": parent.digest, "optimisation": winner.candidate.name}
        ),
        reference=parent.manifest.reference,  # same inputs, so the same drift reference
        # Quantised or pruned, its confidences are not its parent's: calibrated afresh.
        calibration=calibrate(model, parent.manifest.labels, held_out),
    )
    return client.register_model(bundle.pack())


def evaluate_model(
    client: HubClient, request: EvaluateRequest, progress: Progress | None = None
) -> Evaluated:
    """Score a registered model on a dataset version's test split (or every row): by default
    the version it was trained on, whose test rows its training held out.

    Raises `WorkflowError` for a bad request, or a dataset whose rows the model cannot score,
    `HubError` when the hub refuses."""
    model = _onnx(_model(client, request.model, request.version), "evaluate")
    lineage = model.manifest.lineage
    own = lineage.dataset if lineage else None
    dataset = request.dataset or own
    if dataset is None:
        raise WorkflowError(
            f"dataset: {model.name} v{model.version} records no dataset in its lineage; "
            "name the dataset to measure it on",
            field="dataset",
        )
    version = request.dataset_version
    if version is None:
        own_version = lineage.dataset_version if lineage and dataset == own else None
        version = own_version or _latest(client, dataset)
    table = _table(client, dataset, version)
    chosen = np.ones(len(table.labels), dtype=bool) if request.all_rows else table.test
    if not chosen.any():
        raise WorkflowError(f"dataset {dataset} v{version} has no test rows; score all_rows")
    labels = model.manifest.labels
    truth = [table.labels[i] for i in np.flatnonzero(chosen)]
    unknown = sorted(set(truth) - set(labels))
    if unknown:
        raise WorkflowError(
            f"dataset {dataset} v{version} has rows labelled {unknown}, which "
            f"{model.name} v{model.version} does not know (its labels: {labels}); measure it "
            "on a dataset of its labels"
        )
    onnx = Bundle.unpack(client.bundle(model.digest)).model
    if progress is not None:
        progress(f"scoring {len(truth)} rows of {dataset} v{version}", 0, 1)
    rows = _rows(table, model)
    try:
        predicted, _ = OnnxPredictor(onnx, labels).predict(rows[chosen])
    except ValueError as exc:
        raise WorkflowError(f"dataset {dataset} v{version}: {exc}") from None
    index = {label: i for i, label in enumerate(labels)}
    evaluation = evaluate(np.asarray([index[t] for t in truth]), predicted, labels)
    if progress is not None:
        progress(f"scored {len(truth)} rows", 1, 1)
    return Evaluated(model, dataset, version, len(truth), evaluation)


def held_out_probabilities(client: HubClient, ref: BundleRef) -> np.ndarray:
    """Registered model `ref`'s class probabilities, one row per window, on the test split of
    the dataset version it was trained on: the held-out windows a device running it
    calibrates its offload threshold on (`edgestack offload set`).

    Raises `WorkflowError` when the model records no dataset or its dataset has no test
    rows, `HubError` when the hub refuses."""
    model = _onnx(_model(client, ref.name, ref.version), "calibration")
    held = _held_out(client, model, "calibrate on; give the threshold yourself")
    onnx = Bundle.unpack(client.bundle(model.digest)).model
    try:
        _, probabilities = OnnxPredictor(onnx, model.manifest.labels).predict(
            _rows(held.table, model)[held.table.test]
        )
    except ValueError as exc:
        raise WorkflowError(f"dataset {held.dataset} v{held.version}: {exc}") from None
    return probabilities


@dataclass(frozen=True)
class _HeldOut:
    dataset: str
    version: int
    table: DatasetTable


def _held_out(client: HubClient, model: ModelView, to: str) -> _HeldOut:
    """The dataset version `model` was trained on, whose test rows its training held out;
    refused, saying what there is nothing `to` do, when it records none or has no test rows."""
    lineage = model.manifest.lineage
    if lineage is None or lineage.dataset is None:
        raise WorkflowError(
            f"{model.name} v{model.version} records no dataset in its lineage, so it has no "
            f"held-out windows to {to}"
        )
    version = lineage.dataset_version or _latest(client, lineage.dataset)
    table = _table(client, lineage.dataset, version)
    if not table.test.any():
        raise WorkflowError(f"dataset {lineage.dataset} v{version} has no test rows to {to}")
    return _HeldOut(lineage.dataset, version, table)


@dataclass(frozen=True)
class Traded:
    """How `model` on a device of `profile` fares beside `cloud` on the cloud tier over
    `link`, on `rows` held-out rows of version `dataset_version` of `dataset`: one `Choice`
    per policy."""

    model: ModelView
    cloud: ModelView
    profile: str
    dataset: str
    dataset_version: int
    rows: int
    link: Link
    choices: list[Choice]

    def summary(self) -> dict[str, Any]:
        """As JSON: what `edgestack tradeoff --json` prints and a tradeoff job's result."""
        return {
            "model": self.model.model_dump(mode="json"),
            "cloud": self.cloud.model_dump(mode="json"),
            "profile": self.profile,
            "dataset": self.dataset,
            "dataset_version": self.dataset_version,
            "rows": self.rows,
            "link": {
                "bandwidth_kb_s": self.link.bandwidth_bytes_per_s / 1000,
                "rtt_ms": self.link.rtt_ms,
            },
            "choices": [asdict(c) for c in self.choices],
        }


def tradeoff_model(
    client: HubClient,
    model: str,
    version: int | None,
    device_id: str,
    *,
    cloud: str | None = None,
    cloud_version: int | None = None,
    link: Link,
    fractions: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5),
    gate: OffloadGate = "confidence",
    split: str | None = None,
    split_version: int | None = None,
) -> Traded:
    """The trade-off of registered `model` on device `device_id`'s profile against the
    server's model: `cloud`, else the one the device's offload policy names; measured on the
    test split of the dataset version `model` was trained on. A `split` head registered by
    `split_model` adds the split net's row, its tail on the cloud tier.

    Raises `WorkflowError` for a model, server model or dataset that cannot be measured,
    `HubError` when the hub refuses (an unknown device)."""
    device = client.device(device_id)
    small = _onnx(_model(client, model, version), "tradeoff")
    if cloud is None:
        if device.desired.offload is None:
            raise WorkflowError(
                f"cloud: device '{device_id}' has no offload policy to name the server's "
                "model; give it as --cloud MODEL[@VERSION]",
                field="cloud",
            )
        cloud, cloud_version = (
            device.desired.offload.model.name,
            device.desired.offload.model.version,
        )
    big = _onnx(_model(client, cloud, cloud_version), "tradeoff")
    held = _held_out(client, small, "measure on")
    dataset, dataset_version, table = held.dataset, held.version, held.table
    truth = [table.labels[i] for i in np.flatnonzero(table.test)]
    tiers = []
    for tier_model, profile in ((small, device.profile), (big, "cloud")):
        unknown = sorted(set(truth) - set(tier_model.manifest.labels))
        if unknown:
            raise WorkflowError(
                f"{tier_model.name} v{tier_model.version} does not know the labels {unknown} of "
                f"{dataset} v{dataset_version}; compare models of the same labels"
            )
        tiers.append(
            TierModel(
                BundleRef(
                    name=tier_model.name, version=tier_model.version, digest=tier_model.digest
                ),
                Bundle.unpack(client.bundle(tier_model.digest)).model,
                tier_model.manifest.labels,
                _rows(table, tier_model)[table.test],
                rows_kind(tier_model.manifest.input),
                PROFILES[profile],
            )
        )
    cut = None
    if split is not None:
        head, tail = _head_and_tail(client, split, split_version)
        assert head.manifest.split is not None  # a head records its plan
        cut = SplitNet(
            head.manifest.split,
            Bundle.unpack(client.bundle(head.digest)).model,
            Bundle.unpack(client.bundle(tail.digest)).model,
            _rows(table, head)[table.test],
        )
    try:
        device_tier, cloud_tier = tiers
        choices = tradeoff(
            device_tier, cloud_tier, truth, link=link, fractions=fractions, gate=gate, split=cut
        )
    except ValueError as exc:
        raise WorkflowError(f"dataset {dataset} v{dataset_version}: {exc}") from None
    return Traded(small, big, device.profile, dataset, dataset_version, len(truth), link, choices)


def _head_and_tail(
    client: HubClient, name: str, version: int | None
) -> tuple[ModelView, ModelView]:
    """Registered split head `name` and the newest `name-tail` cut by the same plan from the
    same net (`split_model` registers both)."""
    head = _onnx(_model(client, name, version), "tradeoff")
    plan = head.manifest.split
    if plan is None or plan.at in (0, plan.blocks):
        raise WorkflowError(
            f"split: {head.name} v{head.version} is no split net's head; give the model "
            "edgestack split registered for the device",
            field="split",
        )
    tails = [
        m
        for m in client.models()
        if m.name == f"{head.name}-tail"
        and m.manifest.split == plan
        and m.manifest.lineage == head.manifest.lineage
    ]
    if not tails:
        raise WorkflowError(
            f"split: no {head.name}-tail cut with {head.name} v{head.version} is registered; "
            "split the net again with edgestack split",
            field="split",
        )
    return head, max(tails, key=lambda m: m.version)


@dataclass(frozen=True)
class Exported:
    """The model exported, its C checked and measured (`export`), the files `written`, and
    the C bundle as registered (None when not asked for, or when it does not fit the mcu
    profile: `export.refusals` says why)."""

    parent: ModelView
    export: CExport
    written: list[Path]
    model: ModelView | None


def export_model(
    client: HubClient,
    model: str,
    *,
    out: Path,
    version: int | None = None,
    register: bool = True,
    progress: Progress | None = None,
) -> Exported:
    """Write a registered tree, forest or MLP as C into folder `out`, its window features
    included, and register it as a C bundle (target `c`) when `register` and it fits the mcu
    profile.

    The registry holds the model's ONNX, not its native form, so the model is refitted from its
    lineage as `optimise_model` does, and its decisions on the held-out rows must equal the
    registered model's; the C,
    compiled with the host's C compiler, must decide as the registered model does on those
    rows and on probe windows of raw samples.

    Raises `WorkflowError` for a model with no C version, a refit or C model that decides
    otherwise, or a missing compiler; `HubError` when the hub refuses."""
    parent = _onnx(_model(client, model, version), "export")
    lineage = parent.manifest.lineage
    if lineage is None or lineage.dataset is None or lineage.dataset_version is None:
        raise WorkflowError(
            f"{parent.name} v{parent.version} records no dataset in its lineage; export refits "
            "it from there: train it with edgestack train"
        )
    if lineage.trainer not in C_TRAINERS or lineage.optimisation is not None:
        made = f"optimised by {lineage.optimisation}" if lineage.optimisation else lineage.trainer
        raise WorkflowError(
            f"{parent.name} v{parent.version} is {made}; the C target exports models trained "
            f"with {', '.join(C_TRAINERS)}, as trained"
        )
    try:
        features_c(parent.manifest.input)  # a spec with no C version fails before the refit
    except ExportError as exc:
        raise WorkflowError(str(exc)) from None
    _quiet_exporters()
    onnx = Bundle.unpack(client.bundle(parent.digest)).model
    if progress is not None:
        progress(f"refitting {lineage.trainer}", 0, 3)
    refit = _refit(client, parent)
    labels = parent.manifest.labels
    registered_says = OnnxPredictor(onnx, labels).predict(refit.test.x)[0]
    refit_says = OnnxPredictor(refit.onnx, refit.labels).predict(refit.test.x)[0]
    if refit.labels != labels or not np.array_equal(registered_says, refit_says):
        differ = int(np.sum(registered_says != refit_says)) if refit.labels == labels else "all"
        raise WorkflowError(
            f"the refit of {parent.name} v{parent.version} decides otherwise than the registered "
            f"model on {differ} of {len(refit_says)} held-out rows: its lineage does not "
            "reproduce it (was it trained with other versions of its libraries?)"
        )
    if progress is not None:
        progress("compiling and checking the C", 1, 3)
    try:
        exported = export_c(refit.trainer, parent.manifest.input, labels, onnx, refit.test.x)
        written = exported.write(out)
    except ExportError as exc:
        raise WorkflowError(str(exc)) from None
    registered = None
    if register and not exported.refusals:
        if progress is not None:
            progress("registering the C bundle", 2, 3)
        bundle = Bundle.create(
            name=parent.name,
            labels=labels,
            input=parent.manifest.input,
            model=sources_tar(exported.files),
            metrics=parent.manifest.metrics,
            footprint=exported.footprint,
            lineage=lineage.model_copy(update={"parent": parent.digest, "optimisation": "c"}),
            reference=parent.manifest.reference,  # the same inputs, so the same drift reference
            target="c",
        )
        registered = client.register_model(bundle.pack())
    if progress is not None:
        progress("exported", 3, 3)
    return Exported(parent, exported, written, registered)


@dataclass(frozen=True)
class Cut:
    """Multi-exit `parent` cut by `plan`: the device's head and the server's tail as
    registered (None for a side the plan leaves empty: `plan.at` 0 runs all on the server,
    all blocks all on the device)."""

    parent: ModelView
    plan: SplitPlan
    head: ModelView | None
    tail: ModelView | None


def split_model(
    client: HubClient,
    model: str,
    version: int | None,
    *,
    profile: str,
    link: Link,
    server_profile: str = "cloud",
    threshold: float | None = 0.9,
    exit_share: float | None = None,
    int8: bool = False,
    progress: Progress | None = None,
) -> Cut:
    """Cut registered `model`, a `cnn1d_exits` net, between a device of `profile` and a
    server of `server_profile` over `link` where the expected latency per window is least
    (`plan_split`), and register the head as `model`'s next version and the tail as
    `model-tail`, both recording the plan. The exit answers alone from `threshold`, or from
    the exit confidence that `exit_share` of the held-out windows reach. The registry holds
    ONNX only, so the net is refitted from its lineage, as optimize does.

    Raises `WorkflowError` for a model that is no multi-exit net, an unknown profile or a bad
    threshold, `HubError` when the hub refuses."""
    for field, name in (("profile", profile), ("server_profile", server_profile)):
        if name not in PROFILES:
            raise WorkflowError(
                f"{field}: {name!r} is no device profile; give one of {', '.join(PROFILES)}",
                field=field,
            )
    parent = _onnx(_model(client, model, version), "split")
    if parent.manifest.split is not None:
        raise WorkflowError(
            f"{parent.name} v{parent.version} is one side of a split net already; split the "
            "multi-exit net it was cut from (its lineage's parent) instead",
            usage=True,
        )
    lineage = parent.manifest.lineage
    if lineage is None or lineage.trainer != "cnn1d_exits" or lineage.dataset is None:
        trainer = lineage.trainer if lineage else "no recorded trainer"
        raise WorkflowError(
            f"{parent.name} v{parent.version} was trained with {trainer}, no multi-exit net; "
            "train one with edgestack train --model cnn1d_exits and split that",
            usage=True,
        )
    _quiet_exporters()
    if progress is not None:
        progress(f"refitting {lineage.trainer}", 0, 2)
    refit = _refit(client, parent)
    net = refit.trainer
    assert isinstance(net, Cnn1dExits)  # its lineage's trainer
    if exit_share is not None:
        if not 0 < exit_share <= 1:
            raise WorkflowError(
                f"exit_share: {exit_share}; give the share of windows the exit answers, (0, 1]",
                field="exit_share",
            )
        confidence = net.exit_proba(refit.test.x).max(axis=1)
        threshold = float(np.quantile(confidence, 1 - exit_share, method="lower"))
    if threshold is None or not 0 <= threshold <= 1:
        raise WorkflowError(
            f"threshold: {threshold}; give the exit confidence that answers alone, 0 to 1",
            field="threshold",
        )
    if progress is not None:
        progress("measuring each block", 1, 2)
    try:
        plan = plan_split(
            net,
            refit.test.x,
            device=PROFILES[profile],
            server=PROFILES[server_profile],
            link=link,
            threshold=threshold,
            int8=int8,
        )
    except ValueError as exc:
        raise WorkflowError(str(exc), usage=True) from None
    head, tail = package_split(
        net,
        plan,
        name=parent.name,
        labels=parent.manifest.labels,
        spec=parent.manifest.input,
        int8_from=refit.train.x if int8 else None,
    )
    registered = [
        None
        if bundle is None
        else client.register_model(
            Bundle(
                bundle.manifest.model_copy(
                    update={"lineage": lineage.model_copy(update={"parent": parent.digest})}
                ),
                bundle.model,
            ).pack()
        )
        for bundle in (head, tail)
    ]
    if progress is not None:
        progress("registered", 2, 2)
    return Cut(parent, plan, *registered)
