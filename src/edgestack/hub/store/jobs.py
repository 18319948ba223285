"""Hub jobs and their state machine: queued, then running once the worker claims one, then
succeeded, failed or cancelled, and nothing after. Each move out of queued is a hub event.

The worker speaks to these through the API like any admin client; a job's own process
reports its progress, log lines and outcome with `report`.
"""

from collections.abc import Collection
from typing import Literal, cast

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session

from edgestack.hub.errors import Conflict, NotFound
from edgestack.hub.store import events
from edgestack.hub.store.db import Window, utcnow
from edgestack.hub.store.tables import JobRow
from edgestack.protocol import (
    JOB_ENDED,
    HubEventKind,
    JobReport,
    JobRequest,
    JobState,
    JobSubmit,
    JobView,
)

__all__ = [
    "LOG_LINES",
    "cancel",
    "claim",
    "fail_interrupted",
    "get",
    "listing",
    "log",
    "report",
    "submit",
    "view",
]

LOG_LINES = 5000
"""The newest log lines a job keeps; older ones are dropped as new ones come."""

_REQUEST: TypeAdapter[JobRequest] = TypeAdapter(JobRequest)


def submit(session: Session, submission: JobSubmit) -> JobRow:
    """Queue `submission`'s job for the worker."""
    row = JobRow(
        kind=submission.job.kind,
        state="queued",
        request=submission.job.model_dump(mode="json"),
        progress=0.0,
        log=[],
        submitted_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def get(session: Session, job_id: int) -> JobRow:
    row = session.get(JobRow, job_id)
    if row is None:
        raise NotFound(f"no job {job_id}; list them with GET /api/v1/jobs")
    return row


def listing(session: Session, window: Window, state: JobState | None = None) -> list[JobRow]:
    query = select(JobRow)
    if state is not None:
        query = query.where(JobRow.state == state)
    return list(session.scalars(window.apply(query, JobRow.id)))


def log(row: JobRow, after: int, limit: int) -> list[str]:
    """The lines of `row`'s log after line `after` (lines count from 1), at most `limit`."""
    return row.log[after : after + limit]


def claim(session: Session, claimed_by: str | None = None) -> JobRow | None:
    """The oldest queued job, now running; None when none waits. Called in a writer session,
    so two claims never take the same job: SQLite's writer holds the database, and on
    PostgreSQL the row stays locked until the claim commits, skipped by a replica claiming at
    the same time. `claimed_by` is the hub process whose worker runs it (`leases.holder_id`)."""
    row = session.scalars(
        select(JobRow)
        .where(JobRow.state == "queued")
        .order_by(JobRow.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if row is not None:
        row.state = "running"
        row.started_at = utcnow()
        row.claimed_by = claimed_by
        _event(session, row, "info")
    return row


def report(session: Session, job_id: int, news: JobReport) -> JobRow:
    """Take the running job's progress, log lines and outcome. A job no longer running
    refuses it with 409, which tells its process to stop."""
    row = get(session, job_id)
    if row.state != "running":
        raise Conflict(
            f"job {job_id} is {row.state}, not running: it takes no more reports; stop it"
        )
    if news.progress is not None:
        row.progress = news.progress
    if news.step is not None:
        row.step = news.step
    if news.lines:
        row.log = (row.log + news.lines)[-LOG_LINES:]
    if news.milestone is not None:
        events.record(session, "job_progress", f"{_title(row)}: {news.milestone}", severity="info")
    if news.outcome is not None:
        row.state = news.outcome
        row.result = news.result
        row.error = news.error
        row.finished_at = utcnow()
        if news.outcome == "succeeded":
            row.progress = 1.0
        _event(session, row, "info" if news.outcome == "succeeded" else "warning")
    return row


def cancel(session: Session, job_id: int) -> JobRow:
    """Cancel a queued or running job; the worker stops the process of a running one. A job
    that has ended is refused with 409."""
    row = get(session, job_id)
    if row.state in JOB_ENDED:
        raise Conflict(f"job {job_id} has already {row.state}, so it cannot be cancelled")
    row.state = "cancelled"
    row.finished_at = utcnow()
    _event(session, row, "info")
    return row


def fail_interrupted(session: Session, running: Collection[str] | None = None) -> int:
    """Mark failed every job still running when the hub starts, or, given the hub processes
    `running` on a shared database, every running job another one claimed: its worker
    went with the hub that started it, and a half-run training is not resumed (its dataset or
    trainer may have changed since); submit it again. How many were."""
    query = select(JobRow).where(JobRow.state == "running")
    if running is not None:
        # Unclaimed by a named process: claimed on SQLite, failed when its hub starts.
        query = query.where(JobRow.claimed_by.is_not(None), JobRow.claimed_by.not_in(list(running)))
    rows = session.scalars(query).all()
    now = utcnow()
    for row in rows:
        row.state = "failed"
        row.error = "the hub stopped while the job ran; submit it again"
        row.finished_at = now
        _event(session, row, "warning")
    return len(rows)


def _event(session: Session, row: JobRow, severity: Literal["info", "warning"]) -> None:
    """The hub event of `row` having just become `row.state`: job_started for running."""
    kind = "job_started" if row.state == "running" else f"job_{row.state}"
    done = "started" if row.state == "running" else row.state
    message = f"{_title(row)} {done}"
    made = f": {row.error}" if row.error else ""
    events.record(session, cast(HubEventKind, kind), message + made, severity=severity)


def _title(row: JobRow) -> str:
    """How events name `row`: its id, kind and what it does."""
    request = _REQUEST.validate_python(row.request)
    return f"job {row.id} ({request.kind} {request.summary})"


def view(row: JobRow) -> JobView:
    request = _REQUEST.validate_python(row.request)
    return JobView(
        id=row.id,
        kind=request.kind,
        state=row.state,  # type: ignore[arg-type]  # written from JobState only
        job=request,
        progress=row.progress,
        step=row.step,
        result=row.result,
        error=row.error,
        submitted_at=row.submitted_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        log_lines=len(row.log),
    )
