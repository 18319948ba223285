"""`edgestack fleet simulate`: load a hub with simulated devices, then sum up what they did."""

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from edgestack.cli.common import (
    ClientSettings,
    HubOpt,
    JsonOpt,
    Listing,
    console,
    fail,
    load_settings,
)
from edgestack.fleetsim import SimOptions, SimProgress, SimSummary, simulate, transport_scheme

__all__ = ["app", "simulate_fleet", "summary_listing"]

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Simulated fleets.")


@app.command("simulate")
def simulate_fleet(
    devices: Annotated[int, typer.Option(min=1, help="Simulated devices.")] = 100,
    hub: HubOpt = None,
    transport: Annotated[
        str,
        typer.Option(
            help="How devices reach the hub: http, or mqtt://host:port through that broker "
            "(enrolment and bundles still over HTTP)."
        ),
    ] = "http",
    interval: Annotated[
        float, typer.Option(min=0.01, help="Seconds between a device's telemetry batches.")
    ] = 10.0,
    duration: Annotated[
        float | None, typer.Option(min=0.1, help="Stop after this many seconds; else Ctrl-C.")
    ] = None,
    processes: Annotated[
        int, typer.Option(min=1, max=256, help="Processes the devices are spread over.")
    ] = 1,
    enrol_token: Annotated[
        str,
        typer.Option(envvar="EDGESTACK_ENROL_TOKEN", help="The hub's enrolment token."),
    ] = "dev-enrol-token",
    prefix: Annotated[str, typer.Option(help="Device ids are this and a number.")] = "sim-",
    state_file: Annotated[
        Path,
        typer.Option(help="Device tokens kept here, so the next run enrols nobody again."),
    ] = Path("fleet-sim.json"),
    as_json: JsonOpt = False,
) -> None:
    """Run DEVICES simulated devices against a hub: each enrols (or reuses its token from
    --state-file), follows its twin (fetching the bundle desired names and reporting each
    new version), sends a telemetry batch every --interval seconds, give or take a tenth, and
    an event now and then. Progress while it runs; a summary at the end."""
    try:
        transport_scheme(transport)
    except ValueError as exc:
        # The library names the option as `transport`; here it is `--transport`.
        raise fail(f"--{exc}", 2) from None
    try:
        options = SimOptions(
            hub=load_settings(ClientSettings, hub_url=hub).hub_url,
            devices=devices,
            enrol_token=enrol_token,
            transport=transport,
            interval_s=interval,
            duration_s=duration,
            processes=processes,
            prefix=prefix,
            state_file=state_file,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        raise fail(f"--{str(error['loc'][0]).replace('_', '-')}: {error['msg']}", 2) from None
    with Progress(
        TextColumn("devices up"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}  {task.fields[news]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json,
    ) as bars:
        task = bars.add_task("devices", total=devices, news="")

        def show(progress: SimProgress) -> None:
            news = (
                f"{progress.reports_acked} reports acked, {progress.reports_failed} failed, "
                f"{progress.desired_changes} desired changes seen"
            )
            bars.update(task, completed=progress.devices_up, news=news)

        try:
            summary = simulate(options, show)
        except KeyboardInterrupt:
            raise fail("stopped before the end: no summary", 130) from None
    if as_json:
        # The ids of every batch acked are for checking a database against, not for reading.
        print(summary.model_dump_json(indent=2, exclude={"acked_batches"}))
        return
    console.print(summary_listing(summary).render())


def summary_listing(summary: SimSummary) -> Listing:
    """A run's summary as measure and value rows."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} ms"

    rows = [
        ["devices up", f"{summary.devices_up}/{summary.devices} ({summary.enrolled} enrolled)"],
        ["duration", f"{summary.duration_s:.1f} s"],
        [
            "reports sent / acked / failed",
            f"{summary.reports_sent} / {summary.reports_acked} / {summary.reports_failed}",
        ],
        ["reports per second", f"{summary.reports_per_s:.1f}"],
        ["ingest latency p50 / p99", f"{ms(summary.ingest_p50_ms)} / {ms(summary.ingest_p99_ms)}"],
        ["events sent / acked", f"{summary.events_sent} / {summary.events_acked}"],
        ["desired changes seen", str(summary.desired_changes)],
        ["bundles downloaded", str(summary.bundles_downloaded)],
        ["errors", ", ".join(f"{n} {k}" for k, n in sorted(summary.errors.items())) or "-"],
    ]
    return Listing(["fleet", "value"], rows, wrap=["value"])
