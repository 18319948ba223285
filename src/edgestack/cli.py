"""The one command line: `edgestack hub`, `agent`, `demo`, and listings of a running hub."""

import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console
from rich.table import Table

from edgestack.client import HubClient, HubError
from edgestack.protocol import DeployRequest

T = TypeVar("T")
S = TypeVar("S", bound=BaseSettings)

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class ClientSettings(BaseSettings):
    """How the CLI reaches a hub; env vars `EDGESTACK_HUB_URL`, `EDGESTACK_ADMIN_TOKEN`."""

    model_config = SettingsConfigDict(env_prefix="EDGESTACK_")

    hub_url: str = "http://127.0.0.1:8400"
    admin_token: SecretStr = SecretStr("dev-admin-token")


HubOpt = Annotated[str | None, typer.Option("--hub", help="Hub URL [env EDGESTACK_HUB_URL].")]
AdminOpt = Annotated[
    str | None,
    typer.Option("--admin-token", help="[env EDGESTACK_ADMIN_TOKEN]", show_default=False),
]


def _settings(cls: type[S], **given: Any) -> S:
    """Settings from the environment, overridden by the options given on the command line."""
    try:
        return cls(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            console.print(f"[red]error:[/] {field}: {error['msg']}")
        raise typer.Exit(2) from None


def _client(hub: str | None, admin_token: str | None) -> HubClient:
    settings = _settings(ClientSettings, hub_url=hub, admin_token=admin_token)
    return HubClient(settings.hub_url, admin_token=settings.admin_token.get_secret_value())


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    # One line per request, long-polls included, drowns what the agent itself has to say.
    logging.getLogger("httpx").setLevel(logging.WARNING)


@app.command()
def hub(
    data_dir: Annotated[Path | None, typer.Option(help="[env EDGESTACK_HUB_DATA_DIR]")] = None,
    host: Annotated[str | None, typer.Option(help="[env EDGESTACK_HUB_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="[env EDGESTACK_HUB_PORT]")] = None,
) -> None:
    """Run the hub: the fleet's control plane and API."""
    from edgestack.hub import HubSettings, serve

    _logging()
    settings = _settings(HubSettings, data_dir=data_dir, host=host, port=port)
    serve(settings)


@app.command()
def agent(
    hub: Annotated[str | None, typer.Option("--hub", help="[env EDGESTACK_AGENT_HUB_URL]")] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", help="Enrolment token [env EDGESTACK_AGENT_ENROL_TOKEN]"),
    ] = None,
    device_id: Annotated[str | None, typer.Option(help="[env EDGESTACK_AGENT_DEVICE_ID]")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="[env EDGESTACK_AGENT_DATA_DIR]")] = None,
    seed: Annotated[int | None, typer.Option(help="Which simulated machine to watch.")] = None,
) -> None:
    """Run an edge agent: enrol, follow the twin, sense, infer, raise events."""
    from edgestack.agent import AgentSettings, serve

    _logging()
    settings = _settings(
        AgentSettings,
        hub_url=hub,
        enrol_token=token,
        device_id=device_id,
        data_dir=data_dir,
        seed=seed,
    )
    raise typer.Exit(serve(settings))


@app.command()
def demo(
    quick: Annotated[
        bool, typer.Option(help="Collect and watch less; done in about a minute.")
    ] = False,
    report: Annotated[Path | None, typer.Option(help="Write a JSON summary here.")] = None,
    data_dir: Annotated[Path, typer.Option(help="Logs and databases of this run.")] = Path(
        "demo-data"
    ),
) -> None:
    """Hub, three agents, data collection, training, deployment and a fault, on this machine."""
    from edgestack.demo import DemoOptions, run_demo

    options = DemoOptions.quick(data_dir) if quick else DemoOptions(root=data_dir)
    try:
        result = run_demo(options, console)
    except KeyboardInterrupt:
        console.print("[yellow]stopped; every process the demo started has ended[/]")
        raise typer.Exit(130) from None
    except (TimeoutError, HubError, RuntimeError) as exc:
        console.print(f"[red]demo failed:[/] {exc}\nlogs: {data_dir}")
        raise typer.Exit(1) from None
    if report is not None:
        report.write_text(result.report.model_dump_json(indent=2) + "\n")
        console.print(f"report written to {report}")


def _emit(rows: Sequence[BaseModel], as_json: bool, table: Table, cells: list[list[str]]) -> None:
    if as_json:
        print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    for row in cells:
        table.add_row(*row)
    console.print(table)


def _run(call: Callable[[], T]) -> T:
    try:
        return call()
    except HubError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None


@app.command()
def devices(hub: HubOpt = None, admin_token: AdminOpt = None, as_json: JsonOpt = False) -> None:
    """List enrolled devices with what they report."""
    with _client(hub, admin_token) as client:
        rows = _run(client.devices)
    table = Table("device", "status", "model", "last seen", "windows", "predictions", "raw/uplink")
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
                reported.status if reported else "silent",
                model,
                d.last_seen.strftime("%H:%M:%S") if d.last_seen else "never",
                str(t.windows),
                str(sum(t.predictions.values())),
                f"{t.raw_bytes / max(1, t.uplink_bytes):.0f}x",
            ]
        )
    _emit(rows, as_json, table, cells)


@app.command()
def models(hub: HubOpt = None, admin_token: AdminOpt = None, as_json: JsonOpt = False) -> None:
    """List registered model versions."""
    with _client(hub, admin_token) as client:
        rows = _run(client.models)
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
    _emit(rows, as_json, table, cells)


@app.command()
def events(
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    device: Annotated[str | None, typer.Option(help="Only this device's events.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List events the devices raised, oldest first."""
    with _client(hub, admin_token) as client:
        rows = _run(lambda: client.events(device=device, limit=limit))
    table = Table("id", "device", "at", "kind", "label", "message")
    cells = [
        [
            str(e.id),
            e.device_id,
            e.event.at.strftime("%H:%M:%S"),
            e.event.kind,
            e.event.label or "",
            e.event.message,
        ]
        for e in rows
    ]
    _emit(rows, as_json, table, cells)


@app.command()
def deploy(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int | None, typer.Option(help="Latest when left out.")] = None,
    device: Annotated[
        list[str] | None, typer.Option(help="Repeat for several; all when left out.")
    ] = None,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Set a model version as the desired bundle of devices; agents converge to it."""
    with _client(hub, admin_token) as client:
        result = _run(
            lambda: client.deploy(DeployRequest(model=model, version=version, devices=device))
        )
    console.print(
        f"{result.bundle.name} v{result.bundle.version} desired on {', '.join(result.devices)}"
    )
