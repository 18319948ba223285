"""Policies: what the hub does on its own when devices drift, and the state machine of each
run, persisted so a restarted hub carries on where it was.

A run of `retrain-on-drift` starts when drift alerts are open on devices and no run is in
progress, and goes: labelling (the drifting devices were asked for their least confident
recent windows; those inside a feedback span take its label, the others wait for an
operator, until enough are labelled into the policy's dataset), training (a train job that
first freezes the dataset), optimising (an optimise job, when the policy names a profile),
rolling_out (a rollout of the policy's plan, when it has one), then succeeded or failed.
Each step is one hub event; the heavy work is in jobs and rollouts, so `advance` only reads
and writes a few rows.
"""

from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from edgestack.hub.errors import Conflict, HubProblem, NotFound, Unprocessable
from edgestack.hub.store import devices, events, feedback, jobs, review, rollouts, targets
from edgestack.hub.store.db import Window, utcnow
from edgestack.hub.store.tables import (
    AlertRow,
    JobRow,
    PolicyRow,
    PolicyRunRow,
    ReviewWindowRow,
    RolloutRow,
)
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
    RolloutRequest,
    TrainRequest,
    WindowLabels,
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
    return _run_view(session, _start(session, name, trigger))


def _start(session: Session, name: str, trigger: PolicyTrigger) -> PolicyRunRow:
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
    requests = _ask(session, device_ids, policy)
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
    return run


def runs(session: Session, window: Window) -> list[PolicyRunView]:
    query = window.apply(select(PolicyRunRow), PolicyRunRow.id)
    return [_run_view(session, run) for run in session.scalars(query)]


def advance(session: Session) -> list[str]:
    """Start a run of each policy whose devices drift, and move every run in progress on by
    what happened since: windows labelled, a job or a rollout ended. The devices whose
    desired state changed."""
    changed: list[str] = []
    for policy in session.scalars(select(PolicyRow).where(PolicyRow.enabled)):
        if (drifting := _drifting(session, policy.name)) is not None:
            reason = f"drift alerts on {', '.join(drifting)}"[:200]
            started = _start(session, policy.name, PolicyTrigger(devices=drifting, reason=reason))
            changed.extend(started.requests)
    for run in session.scalars(
        select(PolicyRunRow)
        .where(PolicyRunRow.state.not_in(POLICY_ENDED))
        .order_by(PolicyRunRow.id)
    ):
        policy_row = session.get(PolicyRow, run.policy)
        if policy_row is None:  # removed since; `remove` ends its runs, so only a race gets here
            continue
        changed.extend(_advance(session, run, RetrainPolicy.model_validate(policy_row.spec)))
    return changed


def _drifting(session: Session, name: str) -> list[str] | None:
    """The devices with a drift alert raised since the policy's last run began, still open;
    None while a run is in progress or none drifts."""
    if session.scalars(select(PolicyRunRow.id).where(_active(name))).first() is not None:
        return None
    since = session.scalar(
        select(func.max(PolicyRunRow.started_at)).where(PolicyRunRow.policy == name)
    )
    return sorted(_open_drift(session, since)) or None


def _open_drift(session: Session, since: datetime | None = None) -> set[str]:
    """The devices with a drift alert still open, raised after `since` when given."""
    query = select(AlertRow.device_id).where(
        AlertRow.signal == "drift_psi", AlertRow.cleared_at.is_(None)
    )
    if since is not None:
        query = query.where(AlertRow.raised_at > since)
    return set(session.scalars(query))


def _join(session: Session, run: PolicyRunRow, policy: RetrainPolicy) -> list[str]:
    """Ask the devices that started to drift while `run` labels for their windows too; the
    devices asked."""
    joining = sorted(_open_drift(session) - set(run.requests))
    if not joining:
        return []
    run.requests, run.updated_at = {**run.requests, **_ask(session, joining, policy)}, utcnow()
    events.record(
        session,
        "policy_step",
        f"{run.policy} run {run.id}: {', '.join(joining)} drift too; asked them for "
        f"{policy.windows} windows each",
        severity="info",
    )
    return joining


def _ask(session: Session, device_ids: list[str], policy: RetrainPolicy) -> dict[str, int]:
    """Ask each device for the policy's count of windows; each device's request id."""
    requests = {}
    for device_id in device_ids:
        asked = review.ask(session, device_id, policy.windows).send_windows
        assert asked is not None  # what `ask` just set
        requests[device_id] = asked.request_id
    return requests


def _advance(session: Session, run: PolicyRunRow, policy: RetrainPolicy) -> list[str]:
    """Move `run` on; the devices whose desired state changed."""
    if run.state == "labelling":
        joined = _join(session, run, policy)
        _label_from_feedback(session, run, policy)
        labelled = _labelled(session, run, policy)
        if labelled < policy.min_labelled:
            return joined
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
        _step(session, run, "training", f"{labelled} windows labelled; training", training)
        return joined
    if run.state == "rolling_out":
        return _follow_rollout(session, run)
    job = session.get(JobRow, run.job_id) if run.job_id is not None else None
    if job is None or job.state in ("queued", "running"):
        return []
    if job.state != "succeeded" or not (job.result or {}).get("model"):
        _end(session, run, "failed", f"job {job.id} {job.state}: {job.error or 'no model'}")
        return []
    made = ModelView.model_validate(job.result["model"])  # type: ignore[index]
    run.model = BundleRef(name=made.name, version=made.version, digest=made.digest).model_dump(
        mode="json"
    )
    if run.state == "training" and policy.profile is not None:
        optimise = OptimiseRequest(model=made.name, version=made.version, profile=policy.profile)
        _step(
            session,
            run,
            "optimising",
            f"trained {made.name} v{made.version}; optimising for {policy.profile}",
            _submit(session, optimise),
        )
        return []
    if policy.rollout is None:
        _end(session, run, "succeeded", f"{made.name} v{made.version} is registered")
        return []
    request = RolloutRequest(**policy.rollout.model_dump(), model=made.name, version=made.version)
    try:
        held = rollouts.holding(session, targets.resolve(session, request.to, "rollout.to"))
    except HubProblem as exc:  # a target that matches no device any more
        _end(session, run, "failed", f"cannot roll {made.name} v{made.version} out: {exc}")
        return []
    if held is not None:
        return []  # another rollout holds some of its devices: it starts once that one ends
    try:
        rollout, changed = rollouts.start(session, request)
    except HubProblem as exc:  # devices another rollout holds, or that cannot run the model
        _end(session, run, "failed", f"cannot roll {made.name} v{made.version} out: {exc}")
        return []
    run.rollout_id = rollout.id
    _step(
        session,
        run,
        "rolling_out",
        f"rolling {made.name} v{made.version} out (rollout {rollout.id})",
    )
    return changed


def _follow_rollout(session: Session, run: PolicyRunRow) -> list[str]:
    rollout = session.get(RolloutRow, run.rollout_id)
    if rollout is None:
        _end(session, run, "failed", f"rollout {run.rollout_id} is gone")
    elif rollout.state == "completed":
        _end(session, run, "succeeded", f"rollout {rollout.id} completed")
    elif rollout.state in ("rolled_back", "aborted"):
        _end(session, run, "failed", f"rollout {rollout.id} {rollout.state.replace('_', ' ')}")
    return []


def _label_from_feedback(session: Session, run: PolicyRunRow, policy: RetrainPolicy) -> None:
    """Label the run's windows that lie inside a feedback span with the span's label."""
    by_label: dict[str, list[int]] = {}
    for device_id, request_id in run.requests.items():
        for window in session.scalars(
            select(ReviewWindowRow).where(
                ReviewWindowRow.device_id == device_id,
                ReviewWindowRow.request_id == request_id,
                ReviewWindowRow.label.is_(None),
            )
        ):
            label = feedback.label_at(session, device_id, window.at, window.at)
            if label is not None:
                by_label.setdefault(label, []).append(window.id)
    for label, ids in by_label.items():
        review.label(session, WindowLabels(ids=ids, label=label, dataset=policy.dataset))


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
    session: Session,
    run: PolicyRunRow,
    state: PolicyState,
    message: str,
    job: JobRow | None = None,
) -> None:
    run.state, run.job_id, run.updated_at = state, job.id if job else None, utcnow()
    said = f"{message} (job {job.id})" if job else message
    events.record(session, "policy_step", f"{run.policy} run {run.id}: {said}", severity="info")


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
        rollout_id=run.rollout_id,
        model=BundleRef.model_validate(run.model) if run.model else None,
        error=run.error,
        started_at=run.started_at,
        updated_at=run.updated_at,
        finished_at=run.finished_at,
    )
