"""Policies: what the hub does on its own when devices drift, and the state machine of each
run, persisted so a restarted hub carries on where it was.

A run of `retrain-on-drift` goes: labelling (the drifting devices were asked for their least
confident recent windows; it waits until enough are labelled into the policy's dataset),
training (a train job that first freezes the dataset), optimising (an optimise job, when the
policy names a profile), rolling_out, then succeeded or failed. Each step is one hub event;
the heavy work is in jobs, so `advance` only reads and writes a few rows.
"""

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from edgestack.hub.errors import Conflict, NotFound, Unprocessable
from edgestack.hub.store import devices, events, jobs, review
from edgestack.hub.store.db import Window, utcnow
from edgestack.hub.store.tables import JobRow, PolicyRow, PolicyRunRow, ReviewWindowRow
from edgestack.profiles import PROFILES
from edgestack.protocol import (
    POLICY_ENDED,
    BundleRef,
    JobSubmit,
    ModelView,
    OptimiseRequest,
    PolicyName,
    PolicyRunView,
    PolicyState,
    PolicyTrigger,
    PolicyView,
    RetrainPolicy,
    TrainRequest,
)

__all__ = ["advance", "get", "listing", "put", "remove", "runs", "trigger"]


def put(session: Session, name: PolicyName, policy: RetrainPolicy) -> PolicyView:
    """Set policy `name`, enabled; a run in progress carries on under the policy it began with."""
    if policy.profile is not None and policy.profile not in PROFILES:
        raise Unprocessable(
            f"profile: '{policy.profile}' is no device profile; choose one of "
            f"{', '.join(PROFILES)}, or leave it out to roll out the trained model as it is"
        )
    row = session.get(PolicyRow, name)
    if row is None:
        row = PolicyRow(name=name)
        session.add(row)
    row.spec, row.enabled, row.updated_at = policy.model_dump(mode="json"), True, utcnow()
    return _view(row)


def get(session: Session, name: PolicyName) -> PolicyView:
    return _view(_row(session, name))


def listing(session: Session) -> list[PolicyView]:
    return [_view(row) for row in session.scalars(select(PolicyRow).order_by(PolicyRow.name))]


def remove(session: Session, name: PolicyName) -> None:
    """Forget policy `name`; a run in progress is failed, its jobs left to finish."""
    row = _row(session, name)
    for run in session.scalars(select(PolicyRunRow).where(_active(name))):
        _end(session, run, "failed", f"policy {name} was removed")
    session.delete(row)


def trigger(session: Session, name: PolicyName, trigger: PolicyTrigger) -> PolicyRunView:
    """Start a run of `name` for `trigger.devices`: each is asked for its least confident
    recent windows. Refused with 409 while a run of it is in progress."""
    policy = RetrainPolicy.model_validate(_row(session, name).spec)
    running = session.scalars(select(PolicyRunRow.id).where(_active(name))).first()
    if running is not None:
        raise Conflict(
            f"policy {name} is in run {running} already; wait for it to end "
            "(edgestack policy runs), or remove the policy to stop it"
        )
    device_ids = sorted(set(trigger.devices))
    for device_id in device_ids:
        devices.get(session, device_id)  # 404 naming an unknown one, before anything changes
    requests = {}
    for device_id in device_ids:
        asked = review.ask(session, device_id, policy.windows).send_windows
        assert asked is not None  # what `ask` just set
        requests[device_id] = asked.request_id
    now = utcnow()
    run = PolicyRunRow(
        policy=name,
        state="labelling",
        reason=trigger.reason,
        requests=requests,
        started_at=now,
        updated_at=now,
    )
    session.add(run)
    session.flush()
    events.record(
        session,
        "policy_triggered",
        f"{name} run {run.id} ({trigger.reason}): asked {', '.join(device_ids)} for "
        f"{policy.windows} windows each to label into {policy.dataset}",
        severity="info",
    )
    return _run_view(session, run)


def runs(session: Session, window: Window) -> list[PolicyRunView]:
    query = window.apply(select(PolicyRunRow), PolicyRunRow.id)
    return [_run_view(session, run) for run in session.scalars(query)]


def advance(session: Session) -> list[int]:
    """Move every run in progress on by what happened since: its windows labelled, its job
    ended. The ids of the runs that moved."""
    moved = []
    for run in session.scalars(
        select(PolicyRunRow)
        .where(PolicyRunRow.state.not_in(POLICY_ENDED))
        .order_by(PolicyRunRow.id)
    ):
        before = run.state
        policy_row = session.get(PolicyRow, run.policy)
        if policy_row is None:  # removed since; `remove` ends its runs, so only a race gets here
            continue
        _advance(session, run, RetrainPolicy.model_validate(policy_row.spec))
        if run.state != before:
            moved.append(run.id)
    return moved


def _advance(session: Session, run: PolicyRunRow, policy: RetrainPolicy) -> None:
    if run.state == "labelling":
        labelled = _labelled(session, run, policy)
        if labelled >= policy.min_labelled:
            training = _submit(
                session,
                TrainRequest(
                    dataset=policy.dataset,
                    model=policy.model,
                    name=policy.name,
                    freeze=True,
                    budget_s=policy.budget_s,
                    seed=policy.seed,
                ),
            )
            _step(session, run, "training", training, f"{labelled} windows labelled; training")
        return
    job = session.get(JobRow, run.job_id) if run.job_id is not None else None
    if job is None or job.state in ("queued", "running"):
        return
    if job.state != "succeeded" or not (job.result or {}).get("model"):
        _end(session, run, "failed", f"job {job.id} {job.state}: {job.error or 'no model'}")
        return
    made = ModelView.model_validate(job.result["model"])  # type: ignore[index]
    run.model = BundleRef(name=made.name, version=made.version, digest=made.digest).model_dump(
        mode="json"
    )
    if run.state == "training" and policy.profile is not None:
        optimise = OptimiseRequest(model=made.name, version=made.version, profile=policy.profile)
        job_row = _submit(session, optimise)
        _step(
            session,
            run,
            "optimising",
            job_row,
            f"trained {made.name} v{made.version}; optimising for {policy.profile}",
        )
        return
    # Rolling out joins here once rollouts land; until then the model is registered and
    # waits for an operator's deployment.
    _end(session, run, "succeeded", f"{made.name} v{made.version} is ready to roll out")


def _labelled(session: Session, run: PolicyRunRow, policy: RetrainPolicy) -> int:
    """The run's windows labelled into the policy's dataset."""
    return sum(
        session.scalar(
            select(func.count(ReviewWindowRow.id)).where(
                ReviewWindowRow.device_id == device_id,
                ReviewWindowRow.request_id == request_id,
                ReviewWindowRow.dataset == policy.dataset,
            )
        )
        or 0
        for device_id, request_id in run.requests.items()
    )


def _submit(session: Session, job: TrainRequest | OptimiseRequest) -> JobRow:
    return jobs.submit(session, JobSubmit(job=job))


def _step(
    session: Session, run: PolicyRunRow, state: PolicyState, job: JobRow, message: str
) -> None:
    run.state, run.job_id, run.updated_at = state, job.id, utcnow()
    events.record(
        session,
        "policy_step",
        f"{run.policy} run {run.id}: {message} (job {job.id})",
        severity="info",
    )


def _end(session: Session, run: PolicyRunRow, state: PolicyState, message: str) -> None:
    now = utcnow()
    run.state, run.updated_at, run.finished_at = state, now, now
    run.job_id = None
    if state == "failed":
        run.error = message[:4000]
    events.record(
        session,
        "policy_succeeded" if state == "succeeded" else "policy_failed",
        f"{run.policy} run {run.id}: {message}",
        severity="info" if state == "succeeded" else "warning",
    )


def _active(name: str) -> ColumnElement[bool]:
    return (PolicyRunRow.policy == name) & PolicyRunRow.state.not_in(POLICY_ENDED)


def _row(session: Session, name: str) -> PolicyRow:
    row = session.get(PolicyRow, name)
    if row is None:
        raise NotFound(f"no policy {name} is set; set it with edgestack policy set {name} ...")
    return row


def _view(row: PolicyRow) -> PolicyView:
    return PolicyView(
        name=row.name,  # type: ignore[arg-type]  # written from PolicyName only
        policy=RetrainPolicy.model_validate(row.spec),
        enabled=row.enabled,
        updated_at=row.updated_at,
    )


def _run_view(session: Session, run: PolicyRunRow) -> PolicyRunView:
    policy_row = session.get(PolicyRow, run.policy)
    labelled = (
        _labelled(session, run, RetrainPolicy.model_validate(policy_row.spec)) if policy_row else 0
    )
    return PolicyRunView(
        id=run.id,
        policy=run.policy,  # type: ignore[arg-type]  # written from PolicyName only
        state=run.state,  # type: ignore[arg-type]  # written from PolicyState only
        reason=run.reason,
        devices=sorted(run.requests),
        requests=run.requests,
        labelled=labelled,
        job_id=run.job_id,
        model=BundleRef.model_validate(run.model) if run.model else None,
        error=run.error,
        started_at=run.started_at,
        updated_at=run.updated_at,
        finished_at=run.finished_at,
    )
