"""Looking at a running hub's fleet, and steering it."""

from typing import Annotated

import typer
from rich.table import Table

from edgestack.cli.common import AdminOpt, HubOpt, JsonOpt, call, connect, console, emit
from edgestack.protocol import DeployRequest

__all__ = ["approve", "deploy", "devices", "devices_app", "events", "models", "profiles"]

devices_app = typer.Typer(add_completion=False, invoke_without_command=True)


@devices_app.callback()
def devices(
    ctx: typer.Context,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List enrolled devices with what they report; `approve` lets one enrol again."""
    if ctx.invoked_subcommand is not None:
        return
    with connect(hub, admin_token) as client:
        rows = call(client.devices)
    table = Table(
        "device",
        "profile",
        "status",
        "model",
        "last seen",
        "windows",
        "predictions",
        "bad input",
        "raw/uplink",
    )
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
                d.profile,
                (reported.status if reported else "silent")
                + (f", re-enrolment {d.reenrolment}" if d.reenrolment else ""),
                model,
                d.last_seen.strftime("%H:%M:%S") if d.last_seen else "never",
                str(t.windows),
                str(sum(t.predictions.values())),
                ", ".join(f"{n} {reason}" for reason, n in sorted(t.bad_input.items())) or "-",
                f"{t.raw_bytes / max(1, t.uplink_bytes):.0f}x",
            ]
        )
    emit(rows, as_json, table, cells)


@devices_app.command()
def approve(
    device_id: Annotated[str, typer.Argument(help="The enrolled device's id.")],
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Let the next enrolment of DEVICE_ID through without its device token, once: for a
    device that lost its token, or was replaced. Its current token works until then."""
    with connect(hub, admin_token) as client:
        call(lambda: client.approve(device_id))
    console.print(f"{device_id} may enrol again once; its agent picks that up on its next try")


def models(hub: HubOpt = None, admin_token: AdminOpt = None, as_json: JsonOpt = False) -> None:
    """List registered model versions."""
    with connect(hub, admin_token) as client:
        rows = call(client.models)
    table = Table("name", "version", "digest", "accuracy", "labels", "size", "registered")
    cells = [
        [
            m.name,
            str(m.version),
            m.digest[:12],
            f"{m.manifest.metrics.get('accuracy', float('nan')):.3f}",
            ", ".join(m.manifest.labels),
            f"{m.size_bytes / 1e3:.0f} kB",
            m.registered_at.strftime("%Y-%m-%d %H:%M"),
        ]
        for m in rows
    ]
    emit(rows, as_json, table, cells)


def events(
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    device: Annotated[str | None, typer.Option(help="Only this device's events.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List events the devices raised, oldest first."""
    with connect(hub, admin_token) as client:
        rows = call(lambda: client.events(device=device, limit=limit))
    table = Table("id", "device", "at", "kind", "label", "message")
    cells = [
        [
            str(e.id),
            e.device_id or "hub",
            e.event.at.strftime("%H:%M:%S"),
            e.event.kind,
            e.event.label or "",
            e.event.message,
        ]
        for e in rows
    ]
    emit(rows, as_json, table, cells)


def profiles(hub: HubOpt = None, admin_token: AdminOpt = None, as_json: JsonOpt = False) -> None:
    """List the device profiles a deployment is checked against."""
    with connect(hub, admin_token) as client:
        rows = call(client.profiles)
    table = Table("profile", "flash", "RAM", "latency p99", "slowdown", "description")
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
    emit(rows, as_json, table, cells)


def deploy(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int | None, typer.Option(help="Latest when left out.")] = None,
    device: Annotated[
        list[str] | None, typer.Option(help="Repeat for several; all when left out.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Deploy even where the model does not fit the profile.")
    ] = False,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Set a model version as the desired bundle of devices; agents converge to it.

    Refused, naming each device and why, when the model's measured footprint does not fit
    a device's profile (see `edgestack profiles`), unless --force is given."""
    request = DeployRequest(model=model, version=version, devices=device, force=force)
    with connect(hub, admin_token) as client:
        result = call(lambda: client.deploy(request))
    console.print(
        f"{result.bundle.name} v{result.bundle.version} desired on {', '.join(result.devices)}"
    )


def _size(n: int) -> str:
    return f"{n / 1024**3:g} GB" if n >= 1024**3 else f"{n / 1024**2:g} MB"
