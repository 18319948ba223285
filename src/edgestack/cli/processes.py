"""The long-running commands: a hub, an agent, or the whole demo on this machine."""

from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import BaseModel

from edgestack.cli.common import console, fail, load_settings, setup_logging
from edgestack.client import HubError

__all__ = ["agent", "demo", "hub", "hub_app", "migrate", "retain"]


hub_app = typer.Typer()

Scenario = Literal["fault", "drift"]

DataDirOpt = Annotated[Path | None, typer.Option(help=r"\[env EDGESTACK_HUB_DATA_DIR]")]
DatabaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        help="postgresql+psycopg://user:password@host:port/name; default: hub.db in the data "
        r"dir \[env EDGESTACK_HUB_DATABASE_URL]"
    ),
]


@hub_app.callback(invoke_without_command=True)
def hub(
    ctx: typer.Context,
    data_dir: DataDirOpt = None,
    database_url: DatabaseUrlOpt = None,
    host: Annotated[str | None, typer.Option(help=r"\[env EDGESTACK_HUB_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help=r"\[env EDGESTACK_HUB_PORT]")] = None,
    jobs: Annotated[
        str | None,
        typer.Option(
            help="Where jobs run: local, or ray://HOST:PORT, a Ray cluster's Ray Client "
            r"address \[env EDGESTACK_HUB_JOBS]"
        ),
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option(
            help="mqtt://host:port: also take devices' twins and telemetry through this "
            r"broker \[env EDGESTACK_HUB_BROKER_URL]"
        ),
    ] = None,
) -> None:
    """Run the hub: the fleet's control plane and API. It upgrades its database first;
    `edgestack hub migrate` does only that."""
    if ctx.invoked_subcommand is not None:
        return
    from edgestack.hub import HubSettings, serve
    from edgestack.hub.errors import StartRefused

    setup_logging()
    settings = load_settings(
        HubSettings,
        data_dir=data_dir,
        database_url=database_url,
        host=host,
        port=port,
        jobs=jobs,
        broker_url=broker,
    )
    try:
        serve(settings)
    except StartRefused as exc:
        raise fail(str(exc)) from None


@hub_app.command()
def migrate(data_dir: DataDirOpt = None, database_url: DatabaseUrlOpt = None) -> None:
    """Upgrade the hub's database to this release's schema and say from which revision.

    Refused while a hub runs on the data dir."""
    from edgestack.hub import HubSettings
    from edgestack.hub import migrate as migrate_data_dir
    from edgestack.hub.errors import StartRefused
    from edgestack.hub.store.db import masked

    settings = load_settings(HubSettings, data_dir=data_dir, database_url=database_url)
    try:
        change = migrate_data_dir(settings.data_dir, settings.database_url)
    except StartRefused as exc:
        raise fail(str(exc)) from None
    where = masked(settings.database_url) if settings.database_url else settings.data_dir
    console.print(f"{where}: {change}", highlight=False)


@hub_app.command()
def retain(data_dir: DataDirOpt = None, database_url: DatabaseUrlOpt = None) -> None:
    """Roll up and remove now what the hub keeps no longer (EDGESTACK_HUB_RETAIN_*_DAYS), as
    a hub does every EDGESTACK_HUB_RETENTION_EVERY_S, and say how many rows of each table.

    On SQLite, refused while a hub runs on the data dir."""
    from edgestack.hub import HubSettings
    from edgestack.hub.errors import StartRefused
    from edgestack.hub.retention import retain as retain_now

    settings = load_settings(HubSettings, data_dir=data_dir, database_url=database_url)
    try:
        removed = retain_now(settings)
    except StartRefused as exc:
        raise fail(str(exc)) from None
    for table, n in removed.items():
        action = "rolled up and removed" if table == "telemetry_batches" else "removed"
        console.print(f"{table}: {n} {action}", highlight=False)


def agent(
    hub: Annotated[str | None, typer.Option("--hub", help=r"\[env EDGESTACK_HUB_URL]")] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help=r"Enrolment token, printed by a development hub \[env EDGESTACK_ENROL_TOKEN]",
        ),
    ] = None,
    device_id: Annotated[str | None, typer.Option(help=r"\[env EDGESTACK_AGENT_DEVICE_ID]")] = None,
    data_dir: Annotated[Path | None, typer.Option(help=r"\[env EDGESTACK_AGENT_DATA_DIR]")] = None,
    app: Annotated[
        Path | None,
        typer.Option(help="App spec (YAML): sources, steps, features, rules, sinks."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Which simulated machine the built-in motor app watches.")
    ] = None,
    transport: Annotated[
        str | None,
        typer.Option(
            help="http, or mqtt://host:port: the twin and telemetry through that broker "
            r"\[env EDGESTACK_AGENT_TRANSPORT]"
        ),
    ] = None,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Also be an edge node: answer the windows devices offload with bundles from "
            r"the hub \[env EDGESTACK_AGENT_SERVE]",
        ),
    ] = False,
    serve_host: Annotated[
        str | None,
        typer.Option(help=r"Address the edge node answers on \[env EDGESTACK_AGENT_SERVE_HOST]"),
    ] = None,
    serve_port: Annotated[
        int | None,
        typer.Option(help=r"Port the edge node answers on \[env EDGESTACK_AGENT_SERVE_PORT]"),
    ] = None,
) -> None:
    """Run an edge agent: enrol, follow the twin, sense, infer, raise events; with --serve,
    also answer the windows devices offload to this edge node."""
    from edgestack.agent import AgentSettings
    from edgestack.agent import serve as run_agent

    setup_logging()
    settings = load_settings(
        AgentSettings,
        hub_url=hub,
        enrol_token=token,
        device_id=device_id,
        data_dir=data_dir,
        app=app,
        seed=seed,
        transport=transport,
        serve=serve or None,
        serve_host=serve_host,
        serve_port=serve_port,
    )
    raise typer.Exit(run_agent(settings))


def demo(
    scenario: Annotated[
        Scenario,
        typer.Option(
            help="fault: a fault on one machine raises an alarm. drift: the machines' "
            "surroundings change, drift is alerted, and a policy retrains and rolls out."
        ),
    ] = "fault",
    quick: Annotated[
        bool, typer.Option(help="Collect and watch less; done in one to three minutes.")
    ] = False,
    report: Annotated[Path | None, typer.Option(help="Write a JSON summary here.")] = None,
    data_dir: Annotated[Path, typer.Option(help="Logs and databases of this run.")] = Path(
        "demo-data"
    ),
) -> None:
    """Hub, three agents, data collection, training and deployment on this machine, then a
    fault (the default scenario) or a change of the machines' surroundings (drift)."""
    from edgestack.demo import DemoOptions, DriftOptions, run_demo, run_drift

    options = DemoOptions.quick(data_dir) if quick else DemoOptions(root=data_dir)
    try:
        if scenario == "drift":
            drift = DriftOptions.quick(options) if quick else DriftOptions(base=options)
            written: BaseModel = run_drift(drift, console)
        else:
            written = run_demo(options, console).report
    except KeyboardInterrupt:
        console.print("[yellow]stopped; every process the demo started has ended[/]")
        raise typer.Exit(130) from None
    except (TimeoutError, HubError, RuntimeError) as exc:
        console.print(f"[red]demo failed:[/] {exc}\nlogs: {data_dir}")
        raise typer.Exit(1) from None
    if report is not None:
        report.write_text(written.model_dump_json(indent=2) + "\n")
        console.print(f"report written to {report}")
