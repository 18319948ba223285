"""Collect labelled windows from devices, import recordings, and list, show and export
the hub's versioned datasets."""

import io
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import TypeAdapter, ValidationError
from rich.progress import TextColumn
from rich.table import Table

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
    print_json,
    progress_bar,
    request,
)
from edgestack.client import HubClient, HubError
from edgestack.protocol import (
    Collection,
    DatasetName,
    DatasetSummary,
    DatasetVersion,
    DesiredPatch,
    Relabel,
    SampleCounts,
    SampleSelection,
    Split,
)

if TYPE_CHECKING:
    from edgestack.cases import Cut, Length

__all__ = [
    "Format",
    "LengthChoice",
    "SplitChoice",
    "app",
    "collect",
    "datasets_listing",
    "export",
    "freeze",
    "import_dataset",
    "list_datasets",
    "relabel",
    "remove",
    "show",
]

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

DatasetOpt = Annotated[str, typer.Option("--dataset", help="The dataset on the hub.")]
DatasetArg = Annotated[str, typer.Argument(help="The dataset's name.")]
VersionOpt = Annotated[
    int | None, typer.Option(min=1, help="A frozen version; the latest when left out.")
]
LabelOpt = Annotated[str, typer.Option(help="What the samples show, e.g. normal or worn.")]

# How often a running collection asks the hub how many samples arrived.
_POLL_S = 0.5
# How long, at most, to wait after a collection for the device to stop and send the rest.
_SETTLE_S = 15.0


class SplitChoice(StrEnum):
    """The splits a case may be given."""

    train = "train"
    test = "test"


class LengthChoice(StrEnum):
    """How `data import` fits cases to whole windows (`edgestack.cases.Length`)."""

    resample = "resample"
    pad = "pad"
    crop = "crop"


_SPLITS: dict[SplitChoice, Split] = {SplitChoice.train: "train", SplitChoice.test: "test"}
_LENGTHS: dict[LengthChoice, "Length"] = {
    LengthChoice.resample: "resample",
    LengthChoice.pad: "pad",
    LengthChoice.crop: "crop",
}


class Format(StrEnum):
    """The file formats `data export` writes."""

    parquet = "parquet"
    csv = "csv"


@app.command()
def collect(
    device: Annotated[str, typer.Option(help="The device to collect from.")],
    label: LabelOpt,
    seconds: Annotated[float, typer.Option(min=0.5, max=86_400, help="How long to collect.")],
    dataset: DatasetOpt = "default",
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Collect a device's windows under a label for some seconds, then freeze a version."""
    collection = _collection(label, dataset)
    with connect(hub, admin_token) as client:
        before = _received(client, dataset, device)
        call(partial(client.update_desired, device, DesiredPatch(collect=collection)))
        try:
            _watch(client, collection, device, seconds, before)
        finally:
            # Also on Ctrl-C: a device must not go on collecting with nobody watching.
            stopped = call(partial(client.update_desired, device, DesiredPatch(collect=None)))
        _settle(client, dataset, device, stopped.version)
        if _received(client, dataset, device) == before:
            raise fail(
                f"no samples arrived from {device} in {seconds:g} s; "
                "is its agent running? (edgestack devices)"
            )
        version = call(partial(client.freeze, dataset))
    _print_version(dataset, version)


@app.command("import")
def import_dataset(
    path: Annotated[
        Path,
        typer.Argument(
            help="A long table (.csv or .parquet) with columns case, label, optional split "
            "(train or test) and t (seconds), and one column per channel; a folder of "
            "<label>/<case>.csv files (optionally in train/ and test/); or one recording."
        ),
    ],
    dataset: DatasetOpt = "default",
    label: Annotated[
        str | None,
        typer.Option(help="The label of a single recording without a label column."),
    ] = None,
    split: Annotated[
        SplitChoice | None,
        typer.Option(help="The split of every case no split column or folder names."),
    ] = None,
    spec: Annotated[
        Path | None,
        typer.Option(
            help="An input spec (JSON or YAML) or app spec (YAML); when left out, raw windows "
            "of every channel, as --rate, --window and --hop say."
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(min=1e-6, help="Readings per second, where no t column says."),
    ] = None,
    window: Annotated[
        int | None,
        typer.Option(min=1, help="Without --spec: readings a window; the longest case's."),
    ] = None,
    hop: Annotated[
        int | None, typer.Option(min=1, help="Without --spec: readings between windows.")
    ] = None,
    length: Annotated[
        LengthChoice,
        typer.Option(
            help="What fits a case that is no whole number of windows: resample it to the "
            "nearest, pad it with its last reading, or crop what follows its last window."
        ),
    ] = LengthChoice.resample,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Import a labelled data set in one command: cut each case into the windows of a spec,
    upload them with their labels and splits, then freeze one version."""
    # Imported here: processing pulls in numerical libraries the other commands never need.
    from edgestack.appspec import AppSpecError, load_input_spec
    from edgestack.cases import CaseError, cut_cases, import_cut, raw_spec, read_cases

    _dataset_name(dataset)
    chosen: Split | None = None if split is None else _SPLITS[split]
    try:
        cases = read_cases(path, label=label, split=chosen, rate_hz=rate)
        input_spec = raw_spec(cases, window, hop) if spec is None else load_input_spec(spec)
        with progress_bar() as progress:
            task = progress.add_task(f"windows of {path.name}", total=len(cases.cases))
            cut = cut_cases(
                cases,
                input_spec,
                _LENGTHS[length],
                recorded_at=datetime.now(UTC),
                progress=lambda done: progress.update(task, completed=done),
            )
    except AppSpecError as exc:
        raise fail(f"--spec: {exc}", 2) from None
    except CaseError as exc:
        raise fail(str(exc), 2) from None
    _report(cut, input_spec.window, length)
    with connect(hub, admin_token) as client, progress_bar() as progress:
        task = progress.add_task(f"uploading to '{dataset}'", total=len(cut.labels))
        try:
            version = call(
                partial(
                    import_cut,
                    client,
                    dataset,
                    cut,
                    lambda done: progress.update(task, completed=done),
                )
            )
        except CaseError as exc:
            raise fail(str(exc), 2) from None
    _print_version(dataset, version)


def _report(cut: "Cut", window: int, length: "LengthChoice") -> None:
    if cut.short:
        done = {"resample": "resampled to it", "pad": "padded to it", "crop": "left out"}
        shown = ", ".join(cut.short[:20]) + (", ..." if len(cut.short) > 20 else "")
        console.print(
            f"[yellow]{len(cut.short)} cases shorter than a window of {window} "
            f"({done[length.value]}): {shown}[/]",
            highlight=False,
        )
    if cut.cropped:
        console.print(f"[yellow]{cut.cropped} readings after the last whole windows cropped[/]")
    if cut.bad_readings:
        console.print(f"[yellow]{cut.bad_readings} readings were not numbers and count as 0[/]")
    cases = len(dict.fromkeys(cut.cases))
    console.print(f"{cases} cases cut into {len(cut.labels)} windows", highlight=False)


@app.command()
def freeze(
    name: DatasetArg,
    spec: Annotated[
        str | None,
        typer.Option(help="The input spec fingerprint to freeze, when the samples mix several."),
    ] = None,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Freeze what a dataset holds now as its next version."""
    with connect(hub, admin_token) as client:
        version = call(partial(client.freeze, name, spec=spec))
    _print_version(name, version)


@app.command("list")
def list_datasets(
    hub: HubOpt = None, admin_token: AdminOpt = None, as_json: JsonOpt = False
) -> None:
    """List the hub's datasets with what they hold now and their versions."""
    with connect(hub, admin_token) as client:
        rows = call(client.datasets)
    emit(rows, as_json, datasets_listing(rows))


def datasets_listing(rows: Sequence[DatasetSummary]) -> Listing:
    """Datasets as a table, the label counts wrapped."""
    cells = [
        [
            d.name,
            str(d.counts.total),
            _splits(d.counts),
            _tally(d.counts.labels),
            str(d.versions),
            f"v{d.latest}" if d.latest else "-",
        ]
        for d in rows
    ]
    return Listing(
        ["dataset", "samples", "train/test", "labels", "versions", "latest"],
        cells,
        wrap=["labels"],
    )


@app.command()
def show(
    name: DatasetArg,
    version: Annotated[
        int | None, typer.Option(min=1, help="One frozen version; all of them when left out.")
    ] = None,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a dataset's versions, or one version's counts by label, device and split."""
    with connect(hub, admin_token) as client:
        detail = call(partial(client.dataset, name))
    if version is None:
        if as_json:
            print_json(detail)
            return
        table = Table("version", "frozen", "spec", "samples", "train/test", "labels", "devices")
        for v in detail.versions:
            table.add_row(
                f"v{v.version}",
                v.frozen_at.strftime("%Y-%m-%d %H:%M:%S"),
                v.spec,
                str(v.counts.total),
                _splits(v.counts),
                _tally(v.counts.labels),
                _tally(v.counts.devices),
            )
        console.print(table)
        console.print(
            f"{name} holds {detail.counts.total} samples now ({_splits(detail.counts)} "
            f"train/test): {_tally(detail.counts.labels)}"
        )
        return
    chosen = _version(detail.versions, name, version)
    if as_json:
        print_json(chosen)
        return
    table = Table("by", "value", "samples", title=f"{name} v{version}, spec {chosen.spec}")
    for by, tally in (
        ("label", chosen.counts.labels),
        ("device", chosen.counts.devices),
        ("split", chosen.counts.splits),
    ):
        for value, n in tally.items():
            table.add_row(by, value, str(n))
    console.print(table)


@app.command()
def export(
    name: DatasetArg,
    out: Annotated[Path, typer.Option(help="The file to write.")],
    version: VersionOpt = None,
    fmt: Annotated[
        Format | None,
        typer.Option("--format", help="parquet or csv; from the suffix of --out when left out."),
    ] = None,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Write a frozen version to a file, as Parquet or CSV."""
    with connect(hub, admin_token) as client:
        if version is None:
            version = _latest(client, name)
        data = call(partial(client.dataset_parquet, name, version))
    chosen = fmt or (Format.csv if out.suffix.lower() == ".csv" else Format.parquet)
    # pyarrow loads here, not with the command line: every command, `edgestack agent` too,
    # would carry its 30 MB.
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    # On one thread: a version is small, and pyarrow's thread pool has been seen to abort the
    # process as it exits, after the file was written.
    try:
        if chosen is Format.csv:
            table = pq.read_table(io.BytesIO(data), use_threads=False)
            rows = table.num_rows
            pa_csv.write_csv(table, out)
        else:
            rows = pq.read_metadata(io.BytesIO(data)).num_rows
            out.write_bytes(data)
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc}") from None
    console.print(f"{name} v{version}: {rows} samples written to {out} as {chosen.value}")


def _latest(client: HubClient, name: str) -> int:
    versions = call(partial(client.dataset, name)).versions
    if not versions:
        raise fail(
            f"dataset '{name}' has no versions yet; freeze one with: edgestack data freeze {name}"
        )
    return versions[-1].version


def _collection(label: str, dataset: str) -> Collection:
    try:
        return Collection(label=label, dataset=dataset)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        raise fail(
            f"--{field} {error['input']!r}: {message}; a device collects under lower-case "
            "names of letters, digits, _ and - (data named otherwise comes in by data import)",
            2,
        ) from None


def _dataset_name(name: str) -> str:
    """`name` checked as a dataset's name as written (a collection's names are slugs)."""
    try:
        return TypeAdapter(DatasetName).validate_python(name)
    except ValidationError as exc:
        message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise fail(f"--dataset {name!r}: {message}", 2) from None


def _received(client: HubClient, dataset: str, device: str) -> int:
    """How many samples of `device` the dataset holds; none while it does not exist."""
    try:
        return client.dataset(dataset).counts.devices.get(device, 0)
    except HubError as exc:
        if exc.status == 404:
            return 0
        raise fail(str(exc)) from None


def _watch(
    client: HubClient, collection: Collection, device: str, seconds: float, before: int
) -> None:
    with progress_bar(TextColumn("{task.fields[samples]} samples")) as progress:
        task = progress.add_task(
            f"collecting '{collection.label}' from {device}", total=seconds, samples=0
        )
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < seconds:
            received = _received(client, collection.dataset, device) - before
            progress.update(task, completed=elapsed, samples=received)
            time.sleep(min(_POLL_S, max(0.0, seconds - elapsed)))
        received = _received(client, collection.dataset, device) - before
        progress.update(task, completed=seconds, samples=received)


def _settle(client: HubClient, dataset: str, device: str, desired_version: int) -> None:
    """Wait, a bounded time, until the device reports it stopped collecting and its sample
    count holds still: it sends what it holds when a collection ends."""
    deadline = time.monotonic() + _SETTLE_S
    last = -1
    while time.monotonic() < deadline:
        reported = call(partial(client.device, device)).reported
        received = _received(client, dataset, device)
        if reported and reported.desired_version >= desired_version and received == last:
            return
        last = received
        time.sleep(_POLL_S)
    console.print(
        f"[yellow]{device} has not confirmed it stopped collecting; samples still on their "
        "way go to the next version[/]"
    )


def _version(versions: list[DatasetVersion], name: str, version: int) -> DatasetVersion:
    for v in versions:
        if v.version == version:
            return v
    known = ", ".join(f"v{v.version}" for v in versions) or "none yet"
    raise fail(f"dataset '{name}' has no version {version}; its versions: {known}")


def _splits(counts: SampleCounts) -> str:
    return f"{counts.splits.get('train', 0)}/{counts.splits.get('test', 0)}"


def _tally(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {n}" for key, n in counts.items()) or "-"


def _print_version(name: str, version: DatasetVersion) -> None:
    counts = version.counts
    console.print(
        f"{name} v{version.version}: {counts.total} samples ({_splits(counts)} train/test); "
        f"labels: {_tally(counts.labels)}",
        highlight=False,
    )


# The selectors of `data relabel` and `data remove`: samples must match every one given.
DeviceSel = Annotated[str | None, typer.Option("--device", help="Only this device's samples.")]
SinceSel = Annotated[
    str | None,
    typer.Option(help="Only samples taken at or after this ISO 8601 time (UTC unless it says)."),
]
UntilSel = Annotated[
    str | None,
    typer.Option(help="Only samples taken before this ISO 8601 time (UTC unless it says)."),
]
LabelSel = Annotated[str | None, typer.Option("--label", help="Only samples with this label.")]
IdSel = Annotated[
    list[int] | None,
    typer.Option("--id", min=1, help="Only the sample with this id; repeat for more."),
]
SpecSel = Annotated[
    str | None,
    typer.Option(help="Only samples of this input spec fingerprint, when they mix several."),
]


@app.command()
def relabel(
    name: DatasetArg,
    to: Annotated[str, typer.Option(help="The label the selected samples get.")],
    device: DeviceSel = None,
    since: SinceSel = None,
    until: UntilSel = None,
    label: LabelSel = None,
    sample_id: IdSel = None,
    spec: SpecSel = None,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Give the samples selected another label, then freeze a version; older versions keep
    the labels they had."""
    selected = _selected(device, since, until, label, sample_id, spec)
    change = request(Relabel, to=to, **selected)
    with connect(hub, admin_token) as client:
        curated = call(partial(client.relabel, name, change))
    console.print(f"{curated.changed} samples relabelled {to}", highlight=False)
    _print_version(name, curated.version)


@app.command()
def remove(
    name: DatasetArg,
    device: DeviceSel = None,
    since: SinceSel = None,
    until: UntilSel = None,
    label: LabelSel = None,
    sample_id: IdSel = None,
    spec: SpecSel = None,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Remove the samples selected, then freeze a version; older versions keep them."""
    selection = request(SampleSelection, **_selected(device, since, until, label, sample_id, spec))
    with connect(hub, admin_token) as client:
        curated = call(partial(client.remove_samples, name, selection))
    console.print(f"{curated.changed} samples removed", highlight=False)
    _print_version(name, curated.version)


def _selected(
    device: str | None,
    since: str | None,
    until: str | None,
    label: str | None,
    ids: list[int] | None,
    spec: str | None,
) -> dict[str, object]:
    """The selectors given, refused (exit 2) when there is none: a change to every sample is
    not what anyone means by leaving them out."""
    given: dict[str, object] = {
        "device": device,
        "since": _moment("--since", since),
        "until": _moment("--until", until),
        "label": label,
        "ids": ids or None,
        "spec": spec,
    }
    chosen = {key: value for key, value in given.items() if value is not None}
    if not chosen:
        raise fail("select the samples with --device, --since, --until, --label, --id or --spec", 2)
    return chosen


def _moment(option: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise fail(
            f"{option} {value!r}: not an ISO 8601 time, e.g. 2025-03-01T12:00:00", 2
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
