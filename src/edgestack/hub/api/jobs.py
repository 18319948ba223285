from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import (
    AdminDep,
    AuditedOperatorDep,
    HubDep,
    SessionDep,
    ViewerDep,
    WindowDep,
    WriteSessionDep,
)
from edgestack.hub.api.paging import PagerDep
from edgestack.hub.errors import Conflict
from edgestack.hub.ray_jobs import parse_jobs, refuses
from edgestack.hub.store import jobs
from edgestack.protocol import INT64_MAX, JobLog, JobReport, JobState, JobSubmit, JobView

__all__ = ["router"]

router = APIRouter(tags=["jobs"])

SubmitBody = Annotated[JobSubmit, Depends(json_body(JobSubmit))]
ReportBody = Annotated[JobReport, Depends(json_body(JobReport))]
JobId = Annotated[int, Path(ge=1, le=INT64_MAX, description="the job's id")]


@router.post("/jobs", status_code=201, operation_id="jobs-submit")
def submit_job(
    audit: AuditedOperatorDep, submission: SubmitBody, session: WriteSessionDep, hub: HubDep
) -> JobView:
    """Queue a training, optimisation or evaluation for the hub's worker process, which runs
    it as `edgestack train`, `optimize` or `evaluate` would and registers what it makes.

    409 for a job that cannot run where this hub runs jobs (a federated job on a Ray
    cluster), naming the fix; nothing is queued."""
    cluster = parse_jobs(hub.settings.jobs)
    if cluster is not None and (why := refuses(cluster, submission.job.kind)) is not None:
        raise Conflict(f"job.kind: {why}")
    row = jobs.submit(session, submission)
    session.flush()  # for its id
    view = jobs.view(row)
    audit.target = str(view.id)
    audit.changed(None, view)
    session.commit()
    return view


@router.get("/jobs", operation_id="jobs-list")
def list_jobs(
    _: ViewerDep,
    session: SessionDep,
    window: WindowDep,
    pager: PagerDep,
    state: Annotated[JobState | None, Query(description="only jobs in this state")] = None,
) -> list[JobView]:
    """One page of jobs, oldest first (`order=newest` for newest first)."""
    return pager.by_id(window, [jobs.view(row) for row in jobs.listing(session, window, state)])


@router.get("/jobs/{job_id}", operation_id="jobs-get")
def get_job(_: ViewerDep, session: SessionDep, job_id: JobId) -> JobView:
    return jobs.view(jobs.get(session, job_id))


@router.get("/jobs/{job_id}/log", operation_id="jobs-log")
def get_job_log(
    _: ViewerDep,
    session: SessionDep,
    job_id: JobId,
    after: Annotated[int, Query(ge=0, le=INT64_MAX, description="lines already read")] = 0,
    limit: Annotated[int, Query(ge=1, le=jobs.LOG_LINES, description="at most this many")] = 1000,
) -> JobLog:
    """The job's log lines after line `after` (counted from 1), at most `limit`: pass the
    number of lines read so far as `after` to follow it."""
    return JobLog(lines=jobs.log(jobs.get(session, job_id), after, limit))


@router.post("/jobs/{job_id}/cancel", operation_id="jobs-cancel")
def cancel_job(audit: AuditedOperatorDep, session: WriteSessionDep, job_id: JobId) -> JobView:
    """Cancel a queued or running job; the worker stops a running one's process within a
    second or two. A job that has ended is refused with 409."""
    before = jobs.view(jobs.get(session, job_id))
    view = jobs.view(jobs.cancel(session, job_id))
    audit.changed(before, view)
    session.commit()
    return view


@router.post("/jobs/claim", operation_id="jobs-claim")
def claim_job(_: AdminDep, hub: HubDep, session: WriteSessionDep) -> JobView | None:
    """For the hub's worker: the oldest queued job, now running; null when none waits."""
    # The worker asks its own hub: if that process dies, another replica fails the job.
    row = jobs.claim(session, hub.holder)
    session.commit()
    return None if row is None else jobs.view(row)


@router.post("/jobs/{job_id}/report", operation_id="jobs-report")
def report_job(_: AdminDep, session: WriteSessionDep, job_id: JobId, news: ReportBody) -> JobView:
    """For a job's process: its progress, new log lines and, last, its outcome. A job no
    longer running (cancelled) answers 409: stop."""
    row = jobs.report(session, job_id, news)
    session.commit()
    return jobs.view(row)
