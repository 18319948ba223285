"""`edgestack jobs`: the trainings and optimisations the hub's worker runs."""

from functools import partial
from pathlib import Path
from typing import Annotated, cast

import typer

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
from edgestack.client import HubClient, HubError
from edgestack.protocol import JobRequest, JobState, JobView

__all__ = ["app", "follow_job", "submit"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

JobIdArg = Annotated[int, typer.Argument(min=1, help="The job's id (see edgestack jobs list).")]


def submit(
    hub: str | None,
    admin_token: str | None,
    job: JobRequest,
    as_json: bool,
    *,
    png: Path | None = None,
) -> None:
    """Queue `job` on the hub instead of running it here, and say how to follow it. A job
    keeps no plot, so asking for one (`png`) is refused."""
    if png is not None:
        raise fail("--png: a job runs on the hub, which keeps no plot; leave --job out", 2)
    with connect(hub, admin_token) as client:
        queued = call(lambda: client.submit_job(job))
    if as_json:
        print_json(queued)
        return
    console.print(
        f"job {queued.id} queued: {queued.kind}; follow it with: edgestack jobs show {queued.id}",
        highlight=False,
    )


def _listing(rows: list[JobView]) -> Listing:
    """Jobs as a table; when the terminal is narrow, the times go first."""
    cells = [
        [
            str(j.id),
            j.kind,
            j.job.summary,
            j.state,
            f"{100 * j.progress:.0f}%",
            j.step or "",
            j.submitted_at.strftime("%Y-%m-%d %H:%M:%S"),
            j.error or _made(j),
        ]
        for j in rows
    ]
    return Listing(
        ["id", "kind", "what", "state", "progress", "step", "submitted", "outcome"],
        cells,
        wrap=["outcome"],
        hide_first=["submitted", "step"],
    )


def _made(job: JobView) -> str:
    result = job.result or {}
    if "choices" in result:  # a trade-off names the models it measured, registering none
        return f"{len(result['choices'])} policies measured on {result['rows']} rows"
    if model := result.get("model"):
        return f"registered {model['name']} v{model['version']}"
    if "rows" in result:
        return f"accuracy {result['metrics']['accuracy']:.4f} on {result['rows']} rows"
    return ""


@app.command("list")
def list_jobs(
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    state: Annotated[
        str | None, typer.Option(help="Only jobs in this state: queued, running, succeeded, ...")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="The newest this many.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List the newest jobs, oldest of them first."""
    chosen = cast(JobState | None, choice("--state", state, JobState))
    with connect(hub, admin_token) as client:
        rows = call(lambda: client.jobs(newest_first=True, state=chosen, limit=limit))
    rows.reverse()
    emit(rows, as_json, _listing(rows))


@app.command()
def show(
    job_id: JobIdArg, hub: HubOpt = None, admin_token: AdminOpt = None, as_json: JsonOpt = False
) -> None:
    """Show a job: what it runs, how far it is, and what it made or why it failed."""
    with connect(hub, admin_token) as client:
        job = call(lambda: client.job(job_id))
    if as_json:
        print_json(job)
        return
    console.print(_listing([job]).render())
    console.print(f"request: {job.job.model_dump_json(exclude={'kind'})}", highlight=False)
    if job.error:
        console.print(f"[red]error:[/] {job.error}", highlight=False)


@app.command()
def logs(
    job_id: JobIdArg,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Print new lines as they come until the job ends; exit 1 unless it succeeded.",
        ),
    ] = False,
) -> None:
    """Print a job's log lines."""
    with connect(hub, admin_token) as client:
        if not follow:
            after = 0
            while lines := call(partial(client.job_log, job_id, after=after)):
                for line in lines:
                    print(line)
                after += len(lines)
            return
        follow_job(client, job_id)


def follow_job(client: HubClient, job_id: int) -> None:
    """Print job `job_id`'s log lines as they come until it ends, then how it ended; the
    command exits 1 unless it succeeded. Ctrl-C stops following, not the job."""
    try:
        for line in client.follow_job_log(job_id):
            print(line, flush=True)  # at once, for a pipe to see
    except HubError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        return
    job = call(lambda: client.job(job_id))
    console.print(
        f"job {job.id} {job.state}{f': {job.error}' if job.error else ''}", highlight=False
    )
    if job.state != "succeeded":
        raise typer.Exit(1)


@app.command()
def cancel(job_id: JobIdArg, hub: HubOpt = None, admin_token: AdminOpt = None) -> None:
    """Cancel a queued or running job; the worker stops a running one's process."""
    with connect(hub, admin_token) as client:
        job = call(lambda: client.cancel_job(job_id))
    console.print(f"job {job.id} {job.state}", highlight=False)
