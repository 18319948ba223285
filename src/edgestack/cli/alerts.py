"""`edgestack alerts`, `accuracy` and `feedback`: how the models do on the devices, and the
ground truth that tells."""

import csv
import uuid
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.markup import escape

from edgestack.cli.common import (
    AdminOpt,
    HubOpt,
    JsonOpt,
    Listing,
    call,
    connect,
    console,
    emit,
    fail,
)
from edgestack.protocol import (
    LOW_SIGNALS,
    MAX_FEEDBACK_SPANS,
    AccuracyView,
    AlertRule,
    AlertRules,
    AlertView,
    FeedbackBatch,
    FeedbackSpan,
)

__all__ = [
    "accuracy",
    "accuracy_listing",
    "alerts",
    "alerts_app",
    "alerts_listing",
    "feedback",
    "rules",
    "rules_app",
    "rules_listing",
    "set_rule",
]

M = TypeVar("M", bound=BaseModel)

alerts_app = typer.Typer(add_completion=False, invoke_without_command=True)
rules_app = typer.Typer(add_completion=False, invoke_without_command=True)
alerts_app.add_typer(rules_app, name="rules")

# What each field is called on the command line, for its errors.
_RULE_OPTIONS = {
    "signal": "SIGNAL",
    "raise_at": "--raise",
    "clear_at": "--clear",
    "for_batches": "--for",
    "clear_batches": "--clear-for",
}
_SPAN_OPTIONS = {"device_id": "DEVICE", "start": "--from", "end": "--to", "label": "--label"}


@alerts_app.callback()
def alerts(
    ctx: typer.Context,
    open_only: Annotated[bool, typer.Option("--open", help="Only alerts not yet cleared.")] = False,
    device: Annotated[str | None, typer.Option(help="Only this device's alerts.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="The newest this many.")] = 100,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List alerts, newest first: raised when a device's signal (drift, latency, anomaly,
    errors, bad input, accuracy) stayed past its rule, cleared once it stayed back. `rules`
    shows and sets the rules."""
    if ctx.invoked_subcommand is not None:
        return
    with connect(hub, admin_token) as client:
        rows = call(
            lambda: client.alerts(
                device=device, open_only=open_only, limit=limit, newest_first=True
            )
        )
    emit(rows, as_json, alerts_listing(rows))


def alerts_listing(rows: Sequence[AlertView]) -> Listing:
    """Alerts as a table; on a narrow terminal the id and first value go first."""
    cells = [
        [
            str(a.id),
            a.device_id,
            a.signal,
            a.state,
            f"{a.model} v{a.version}" if a.model else (a.bundle_digest or "-")[:12],
            f"{a.first_value:.4g}",
            f"{a.worst_value:.4g}",
            f"{a.last_value:.4g}",
            a.raised_at.strftime("%m-%d %H:%M:%S"),
            a.cleared_at.strftime("%m-%d %H:%M:%S") if a.cleared_at else "-",
        ]
        for a in rows
    ]
    return Listing(
        ["id", "device", "signal", "state", "model", "first", "worst", "last", "raised", "cleared"],
        cells,
        hide_first=["id", "first", "last", "model", "cleared"],
    )


@rules_app.callback()
def rules(
    ctx: typer.Context, hub: HubOpt = None, admin_token: AdminOpt = None, as_json: JsonOpt = False
) -> None:
    """List each signal's alert rule; `set` changes one."""
    if ctx.invoked_subcommand is not None:
        return
    with connect(hub, admin_token) as client:
        rows = call(client.alert_rules)
    emit(rows, as_json, rules_listing(rows))


def rules_listing(rows: Sequence[AlertRule]) -> Listing:
    """Alert rules as a table."""
    cells = []
    for r in rows:
        bad, good = ("<=", ">=") if r.signal in LOW_SIGNALS else (">=", "<=")
        cells.append(
            [
                r.signal,
                f"{bad} {r.raise_at:g}",
                str(r.for_batches),
                f"{good} {r.clear_at:g}",
                str(r.clear_batches),
            ]
        )
    return Listing(["signal", "raise at", "for batches", "clear at", "clear batches"], cells)


@rules_app.command("set")
def set_rule(
    signal: Annotated[str, typer.Argument(help="drift_psi, p99_ms, accuracy, ...")],
    raise_at: Annotated[
        float | None, typer.Option("--raise", help="Raise at or past this value.")
    ] = None,
    clear_at: Annotated[
        float | None, typer.Option("--clear", help="Clear at or past this, on the safe side.")
    ] = None,
    for_batches: Annotated[
        int | None, typer.Option("--for", help="Telemetry batches in a row to raise.")
    ] = None,
    clear_batches: Annotated[
        int | None, typer.Option("--clear-for", help="Telemetry batches in a row to clear.")
    ] = None,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Change SIGNAL's alert rule; what is left out stays as it is."""
    given = {
        "raise_at": raise_at,
        "clear_at": clear_at,
        "for_batches": for_batches,
        "clear_batches": clear_batches,
    }
    with connect(hub, admin_token) as client:
        current = {r.signal: r for r in call(client.alert_rules)}
        base = current[signal].model_dump() if signal in current else {}
        fields = {**base, "signal": signal, **{k: v for k, v in given.items() if v is not None}}
        rule = _valid(AlertRule, fields, _RULE_OPTIONS)
        updated = call(lambda: client.set_alert_rules(AlertRules(rules=[rule])))
    console.print(rules_listing([r for r in updated if r.signal == signal]).render())


def accuracy(
    device: Annotated[str | None, typer.Option(help="Only this device.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model's versions.")] = None,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per device and model version: accuracy on the windows feedback labelled, beside the
    accuracy its calibrated confidences make likely over every window, labelled or not."""
    with connect(hub, admin_token) as client:
        rows = call(lambda: client.accuracy(device=device, model=model))
    emit(rows, as_json, accuracy_listing(rows))


def accuracy_listing(rows: Sequence[AccuracyView]) -> Listing:
    """Accuracy as a table; the digest goes first on a narrow terminal."""
    cells = [
        [
            a.device_id,
            f"{a.model} v{a.version}" if a.model else "-",
            a.bundle_digest[:12],
            _share(a.accuracy),
            str(a.labelled_windows),
            _share(a.estimated_accuracy),
            str(a.estimated_windows),
        ]
        for a in rows
    ]
    return Listing(
        ["device", "model", "digest", "live", "labelled", "estimated", "windows"],
        cells,
        hide_first=["digest", "windows"],
    )


def feedback(
    device: Annotated[
        str | None, typer.Argument(help="The device whose machine's state you know.")
    ] = None,
    label: Annotated[str | None, typer.Option(help="The state it was in.")] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="When it began, ISO 8601 with a zone.")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="When it ended, likewise.")] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            exists=True,
            dir_okay=False,
            help="A CSV of spans instead, whose header names device_id, start, end and label.",
        ),
    ] = None,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Post ground truth: DEVICE's machine was in state --label from --from to --to (or every
    span of --file). The telemetry inside a span counts towards `edgestack accuracy`."""
    spans = list(_spans(device, label, start, end, file))
    if not spans:
        raise fail(f"--file: {file} holds no spans; give a row of each below its header", 2)
    # A longer file goes as several batches.
    batches = [
        FeedbackBatch(batch_id=uuid.uuid4(), spans=spans[i : i + MAX_FEEDBACK_SPANS])
        for i in range(0, len(spans), MAX_FEEDBACK_SPANS)
    ]
    with connect(hub, admin_token) as client:
        for batch in batches:
            ack = call(partial(client.post_feedback, batch))
            for note in ack.notes:
                console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    console.print(f"{len(spans)} labelled span{'s' * (len(spans) != 1)} posted")


def _spans(
    device: str | None, label: str | None, start: str | None, end: str | None, file: Path | None
) -> Iterator[FeedbackSpan]:
    one = {"device_id": device, "label": label, "start": start, "end": end}
    if file is None:
        missing = [_SPAN_OPTIONS[k] for k, v in one.items() if v is None]
        if missing:
            raise fail(f"{', '.join(missing)}: give DEVICE, --label, --from and --to, or --file", 2)
        yield _valid(FeedbackSpan, one, _SPAN_OPTIONS)
        return
    if any(v is not None for v in one.values()):
        raise fail("--file: give the spans in the file, or DEVICE --label --from --to; not both", 2)
    with file.open(newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                # Other columns, a note or who logged it, are the file's own business.
                yield FeedbackSpan.model_validate({k: row.get(k) for k in _SPAN_OPTIONS})
            except ValidationError as exc:
                error = exc.errors()[0]
                where = ".".join(str(p) for p in error["loc"])
                raise fail(f"{file}:{line}: {where}: {error['msg']}", 2) from None


def _valid(kind: type[M], fields: dict[str, Any], options: dict[str, str]) -> M:
    try:
        return kind(**fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        message = str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
        raise fail(f"{options.get(field, field)} {fields.get(field)!r}: {message}", 2) from None


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
