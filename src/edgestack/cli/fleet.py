"""Looking at a running hub's fleet, and steering it."""

from collections.abc import Sequence
from typing import Annotated, cast

import typer
from pydantic import TypeAdapter, ValidationError

from edgestack.cli.common import (
    AdminOpt,
    HubOpt,
    JsonOpt,
    Listing,
    call,
    choice,
    connect,
    console,
    emit,
    fail,
    print_json,
)
from edgestack.client import HubError
from edgestack.profiles import PROFILES, DeviceProfile
from edgestack.protocol import (
    DeployRequest,
    DeviceStatus,
    DeviceView,
    EventView,
    ModelView,
    ProfileView,
    TagsPatch,
    TagTerm,
)

__all__ = [
    "approve",
    "deploy",
    "devices",
    "devices_app",
    "devices_listing",
    "drift_listing",
    "events",
    "events_listing",
    "list_devices",
    "models",
    "models_listing",
    "monitoring_listing",
    "profiles",
    "profiles_listing",
    "show",
    "tag",
]

devices_app = typer.Typer(add_completion=False, invoke_without_command=True)


@devices_app.callback()
def devices(
    ctx: typer.Context,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List enrolled devices with what they report; a failing device's reason is cut short
    here, whole in --json (reported.error). `tag` sets a device's tags; `approve` lets one
    enrol again."""
    if ctx.invoked_subcommand is None:
        list_devices(hub, admin_token, as_json=as_json)


@devices_app.command("list")
def list_devices(
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(help="Only devices carrying this tag, key=value; repeat: all must hold."),
    ] = None,
    status: Annotated[
        str | None, typer.Option(help="Only devices reporting this status: running, failed, ...")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the enrolled devices, or those carrying every --tag and reporting --status."""
    terms = [_tag_term(term) for term in tag or []]
    chosen = cast(DeviceStatus | None, choice("--status", status, DeviceStatus))
    with connect(hub, admin_token) as client:
        rows = call(lambda: client.devices(tag=terms, status=chosen))
    emit(rows, as_json, devices_listing(rows))


_TAG_TERM = TypeAdapter(TagTerm)


def _tag_term(term: str) -> str:
    try:
        return _TAG_TERM.validate_python(term)
    except ValidationError as exc:
        raise fail(f"--tag {term!r}: {exc.errors()[0]['msg']}", 2) from None


def _now(predictions: dict[str, int]) -> str:
    """The label most of the latest batch's windows got, with its share of them."""
    if not predictions:
        return "-"
    label, count = max(predictions.items(), key=lambda item: (item[1], item[0]))
    return f"{label} {count}/{sum(predictions.values())}"


def devices_listing(rows: Sequence[DeviceView]) -> Listing:
    """Devices as a table; on a narrow terminal the totals go before what needs attention."""
    cells = []
    for d in rows:
        reported = d.reported
        model = (
            f"{reported.bundle.name} v{reported.bundle.version}"
            if reported and reported.bundle
            else "-"
        )
        t = d.telemetry
        cells.append(
            [
                d.device_id,
                " ".join(f"{k}={v}" for k, v in sorted(d.tags.items())) or "-",
                d.profile,
                (reported.status if reported else "silent")
                + (f", re-enrolment {d.reenrolment}" if d.reenrolment else ""),
                _short(reported.error, 24) if reported and reported.error else "-",
                model,
                "-" if t.p99_ms is None else f"{t.p99_ms:.3g} ms",
                "-" if t.drift_psi is None else f"{t.drift_psi:.2f}",
                d.last_seen.strftime("%H:%M:%S") if d.last_seen else "never",
                str(t.windows),
                _now(t.latest_predictions),
                ", ".join(f"{n} {reason}" for reason, n in sorted(t.bad_input.items())) or "-",
                f"{t.raw_bytes / max(1, t.uplink_bytes):.0f}x",
                f"{t.outbox_dropped}/{t.dead_lettered}",
            ]
        )
    return Listing(
        [
            "device",
            "tags",
            "profile",
            "status",
            "error",
            "model",
            "p99",
            "drift",
            "last seen",
            "windows",
            "now",
            "bad input",
            "raw/uplink",
            "dropped/dead",
        ],
        cells,
        wrap=["bad input", "tags"],
        hide_first=[
            "raw/uplink",
            "tags",
            "windows",
            "dropped/dead",
            "profile",
            "last seen",
            "bad input",
            "p99",
            "drift",
        ],
    )


# Features shown by `devices show`, the most drifted first; --json has them all.
_SHOWN_FEATURES = 10


@devices_app.command()
def show(
    device_id: Annotated[str, typer.Argument(help="The enrolled device's id.")],
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one device: its row of `edgestack devices`, then what monitoring says of the
    model it runs (latency per call, throughput, CPU and memory, anomaly score, change
    alarms) and its input drift, the most drifted features first. The drift is summed over
    the device's latest windows of its bundle; it stays empty until enough have come."""
    with connect(hub, admin_token) as client:
        view = call(lambda: client.device(device_id))
    if as_json:
        print_json(view)
        return
    console.print(devices_listing([view]).render())
    console.print(monitoring_listing(view).render())
    drift = drift_listing(view)
    if drift.cells:
        console.print(drift.render())
    more = len(view.telemetry.drift_psi_by_feature) - len(drift.cells)
    if more > 0:
        console.print(f"{more} more features (--json)")


def monitoring_listing(view: DeviceView) -> Listing:
    """What monitoring last said of a device's model, as measure and value rows."""
    t = view.telemetry

    def number(value: float | None, unit: str = "", digits: str = ".3g") -> str:
        return "-" if value is None else f"{value:{digits}}{unit}"

    rows = [
        [
            "latency per call p50/p95/p99",
            " / ".join(number(v) for v in (t.p50_ms, t.p95_ms, t.p99_ms)) + " ms",
        ],
        ["throughput", number(t.throughput, " windows/s")],
        ["CPU", number(None if t.cpu_share is None else t.cpu_share * 100, " %")],
        ["memory", number(None if t.rss_bytes is None else t.rss_bytes / 2**20, " MiB")],
        ["anomaly score, max", number(t.anomaly_max)],
        ["change alarms", ", ".join(f"{n} {k}" for k, n in sorted(t.changes.items())) or "-"],
        ["outbox pending", str(t.outbox_pending)],
        [
            "drift PSI / KS (largest)",
            f"{number(t.drift_psi, digits='.2f')} / "
            f"{number(t.drift_ks, digits='.2f')} over {t.drift_windows} windows",
        ],
    ]
    return Listing(["monitoring", "value"], rows, wrap=["value"])


def drift_listing(view: DeviceView) -> Listing:
    """A device's drift per feature, the largest PSI first: the first `_SHOWN_FEATURES`."""
    t = view.telemetry
    ranked = sorted(t.drift_psi_by_feature.items(), key=lambda item: -item[1])
    cells = [
        [feature, f"{score:.2f}", f"{t.drift_ks_by_feature.get(feature, float('nan')):.2f}"]
        for feature, score in ranked[:_SHOWN_FEATURES]
    ]
    return Listing(["feature", "PSI", "KS"], cells)


@devices_app.command()
def approve(
    device_id: Annotated[str, typer.Argument(help="The enrolled device's id.")],
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Let the next enrolment of DEVICE_ID through without its device token, once: for a
    device that lost its token, or was replaced, whose enrolment was refused and now waits
    (`edgestack devices` shows "re-enrolment waiting"). Its current token works until then."""
    with connect(hub, admin_token) as client:
        call(lambda: client.approve(device_id))
    console.print(f"{device_id} may enrol again once; its agent picks that up on its next try")


@devices_app.command()
def tag(
    device_id: Annotated[str, typer.Argument(help="The enrolled device's id.")],
    tags: Annotated[
        list[str] | None,
        typer.Argument(help="key=value to set, key= to remove, as in site=plant-4 line=2."),
    ] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="A key to remove; repeat for several.")
    ] = None,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Set tags of DEVICE_ID (key=value) and remove some (key= or --remove key); deployments
    then target the devices carrying a tag with --to tag:key=value."""
    given: dict[str, str] = {}
    for item in tags or []:
        key, sign, value = item.partition("=")
        if not sign:
            raise fail(f"tag {item!r}: write key=value to set a tag, or key= to remove one", 2)
        given[key] = value
    removed = [*(remove or []), *(k for k, v in given.items() if not v)]
    try:
        patch = TagsPatch(tags={k: v for k, v in given.items() if v}, remove=removed)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise fail(f"tag {error['input']!r}: {error['msg']}", 2) from None
    with connect(hub, admin_token) as client:
        view = call(lambda: client.tag(device_id, patch))
    carried = " ".join(f"{k}={v}" for k, v in view.tags.items())
    console.print(f"{device_id} tags: {carried}" if carried else f"{device_id} carries no tags")


def models(hub: HubOpt = None, admin_token: AdminOpt = None, as_json: JsonOpt = False) -> None:
    """List registered model versions: how each was made (trained on which dataset version,
    or optimised how from which version), the device profiles it fits, its size and accuracy."""
    with connect(hub, admin_token) as client:
        rows = call(client.models)
        profiles = [] if as_json else call(client.profiles)
    fits = [DeviceProfile.model_validate(p.model_dump()) for p in profiles]
    emit(rows, as_json, models_listing(rows, fits))


def models_listing(
    rows: Sequence[ModelView], profiles: Sequence[DeviceProfile] = tuple(PROFILES.values())
) -> Listing:
    """Model versions as a table, each as name@version with how it was made and the
    `profiles` its measured footprint fits; the digest and labels go first on a narrow
    terminal."""
    versions = {m.digest: f"{m.name}@{m.version}" for m in rows}
    cells = [
        [
            f"{m.name}@{m.version}",
            _made(m, versions),
            _fits(m, profiles),
            f"{m.manifest.metrics.get('accuracy', float('nan')):.3f}",
            f"{m.size_bytes / 1e3:.0f} kB",
            ", ".join(m.manifest.labels),
            m.digest[:12],
            m.registered_at.strftime("%Y-%m-%d %H:%M"),
        ]
        for m in rows
    ]
    return Listing(
        ["model", "made", "fits", "accuracy", "size", "labels", "digest", "registered"],
        cells,
        wrap=["made", "labels"],
        hide_first=["digest", "registered", "labels", "size"],
    )


def _made(model: ModelView, versions: dict[str, str]) -> str:
    """How a version was made: optimised how from which version (by digest when that version
    is not listed), else trained with which trainer on which dataset version."""
    lineage = model.manifest.lineage
    if lineage is None:
        return "-"
    if lineage.optimisation is not None:
        parent = versions.get(lineage.parent or "", (lineage.parent or "?")[:12])
        return f"{lineage.optimisation} of {parent}"
    if lineage.dataset is None:
        return lineage.trainer
    at = f"@{lineage.dataset_version}" if lineage.dataset_version else ""
    return f"{lineage.trainer} on {lineage.dataset}{at}"


def _fits(model: ModelView, profiles: Sequence[DeviceProfile]) -> str:
    footprint = model.manifest.footprint
    if footprint is None:
        return "unmeasured"
    return ", ".join(p.name for p in profiles if not p.refuses(footprint)) or "none"


def events(
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    device: Annotated[str | None, typer.Option(help="Only this device's events.")] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(help="Only events of devices carrying this tag, key=value; repeat for all."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="The newest this many.")] = 100,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Then print each new event as it comes, until Ctrl-C."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the events of the devices and the hub, newest first."""
    with connect(hub, admin_token) as client:
        tags = tag or []
        rows = call(lambda: client.events(device=device, tags=tags, limit=limit, newest_first=True))
        emit(rows, as_json, events_listing(rows))
        if not follow:
            return
        after_id = max((e.id for e in rows), default=0)
        try:
            for event in client.stream_events(after_id=after_id, device=device, tags=tags):
                # One line each, JSON Lines with --json, written at once for a pipe to see.
                line = event.model_dump_json() if as_json else "  ".join(_event_cells(event))
                print(line, flush=True)
        except HubError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            return


def events_listing(rows: Sequence[EventView]) -> Listing:
    """Events as a table, the message wrapped to what the terminal leaves it."""
    return Listing(
        ["id", "device", "at", "kind", "label", "message"],
        [_event_cells(e) for e in rows],
        wrap=["message"],
        hide_first=["id", "label"],
    )


def _event_cells(e: EventView) -> list[str]:
    return [
        str(e.id),
        e.device_id or "hub",
        e.event.at.strftime("%H:%M:%S"),
        e.event.kind,
        e.event.label or "",
        e.event.message,
    ]


def profiles(hub: HubOpt = None, admin_token: AdminOpt = None, as_json: JsonOpt = False) -> None:
    """List the device profiles a deployment is checked against."""
    with connect(hub, admin_token) as client:
        rows = call(client.profiles)
    emit(rows, as_json, profiles_listing(rows))


def profiles_listing(rows: Sequence[ProfileView]) -> Listing:
    """Device profiles as a table, the description wrapped."""
    cells = [
        [
            p.name,
            _size(p.flash_bytes),
            _size(p.ram_bytes),
            f"{p.latency_ms:g} ms",
            f"{p.speed_factor:g}x",
            p.description,
        ]
        for p in rows
    ]
    return Listing(
        ["profile", "flash", "RAM", "latency p99", "slowdown", "description"],
        cells,
        wrap=["description"],
        hide_first=["slowdown"],
    )


# What each field of a deployment is called on the command line, for its errors.
_DEPLOY_OPTIONS = {
    "model": "MODEL",
    "version": "--version",
    "devices": "--device",
    "to": "--to",
}


def deploy(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int | None, typer.Option(help="Latest when left out.")] = None,
    device: Annotated[
        list[str] | None, typer.Option(help="A device to deploy to; repeat for several.")
    ] = None,
    to: Annotated[
        list[str] | None,
        typer.Option(
            help="Devices to deploy to: an id, tag:key=value (several key=value joined by commas "
            "must all hold), or all; repeat for several."
        ),
    ] = None,
    all_devices: Annotated[
        bool, typer.Option("--all", help="Deploy to every enrolled device.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Deploy even where a device cannot feed the model or it does not fit."
        ),
    ] = False,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Set a model version as the desired bundle of the devices named with --device, those
    that --to targets (tag:site=plant-4), or every device with --all; agents converge to it.

    Refused, naming each device and why, when a device cannot feed the model (sensors, rate,
    feature extractors) or the model's measured footprint does not fit its profile (see
    `edgestack profiles`), unless --force is given."""
    try:
        request = DeployRequest(
            model=model, version=version, devices=device, to=to, all=all_devices, force=force
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        option = _DEPLOY_OPTIONS.get(str(error["loc"][0]), str(error["loc"][0]))
        raise fail(f"{option} {error['input']!r}: {error['msg']}", 2) from None
    with connect(hub, admin_token) as client:
        result = call(lambda: client.deploy(request))
    console.print(
        f"{result.bundle.name} v{result.bundle.version} desired on {', '.join(result.devices)}"
    )


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _size(n: int) -> str:
    return f"{n / 1024**3:g} GB" if n >= 1024**3 else f"{n / 1024**2:g} MB"
