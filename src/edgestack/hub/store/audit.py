"""The audit log: every control action, who did it, when, and the state before and after."""

from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from edgestack.hub.store.db import Window, utcnow
from edgestack.hub.store.tables import AuditRow
from edgestack.protocol import AuditView, Role

__all__ = ["listing", "record"]


def record(
    session: Session,
    *,
    actor: str,
    role: Role,
    action: str,
    target: str | None,
    before: Any,
    after: Any,
) -> None:
    """Add a row for an action; it is kept only if the caller's transaction commits.
    `before` and `after` must be JSON as `json.dumps` takes it."""
    session.add(
        AuditRow(
            at=utcnow(),
            actor=actor,
            role=role,
            action=action,
            target=target,
            before=before,
            after=after,
        )
    )


def listing(
    session: Session,
    window: Window,
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
) -> list[AuditView]:
    """One page of the log, filtered by each of `actor`, `action` and `target` given."""
    query = select(AuditRow)
    for column, value in (
        (AuditRow.actor, actor),
        (AuditRow.action, action),
        (AuditRow.target, target),
    ):
        if value is not None:
            query = query.where(column == value)
    return [_view(row) for row in session.scalars(window.apply(query, AuditRow.id))]


def _view(row: AuditRow) -> AuditView:
    return AuditView(
        id=row.id,
        at=row.at,
        actor=row.actor,
        role=cast(Role, row.role),
        action=row.action,
        target=row.target,
        before=row.before,
        after=row.after,
    )
