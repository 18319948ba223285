"""Leases: the few things only one hub process may run at a time (the controller, webhook
delivery) when several hub replicas share one database.

A process takes a named lease for `ttl_s` seconds and renews it before it ends; a process
killed while holding one stops renewing it, and another takes it once it has expired. Each
take is one statement on the lease's row, so two processes never both hold it; on
PostgreSQL that row stays locked until the taker's transaction ends, so work done in the
same transaction as the take is done by one process at a time. Expiry is read on each
process's own clock: replicas keep their clocks in step (NTP) to well within a lease.
"""

import os
import secrets
import socket
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from edgestack.hub.store.db import utcnow
from edgestack.hub.store.tables import LeaseRow

__all__ = [
    "CONTROLLER",
    "WEBHOOKS",
    "forget",
    "holder_id",
    "release",
    "replica",
    "running",
    "take",
]

CONTROLLER = "controller"
"""The lease of the controller that steps rollouts and policy runs."""

WEBHOOKS = "webhooks"
"""The lease of webhook delivery."""

_REPLICA = "replica:"


def replica(holder: str) -> str:
    """The lease a hub process renews while it runs: that `holder` is alive."""
    return _REPLICA + holder


def holder_id() -> str:
    """A name for the calling process as a lease holder, unique across machines and runs:
    its host, its process id and a random part (process ids come round again)."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"


def take(session: Session, name: str, holder: str, ttl_s: float) -> bool:
    """Take lease `name` for `holder` until `ttl_s` seconds from now, or renew it; whether
    `holder` holds it. Call in a writer session and commit: the lease is taken only then."""
    now = utcnow()
    expires_at = now + timedelta(seconds=ttl_s)
    renewed = cast(
        CursorResult[Any],
        session.execute(
            update(LeaseRow)
            .where(
                LeaseRow.name == name,
                or_(LeaseRow.holder == holder, LeaseRow.expires_at <= now),
            )
            .values(holder=holder, expires_at=expires_at)
            .execution_options(synchronize_session=False)
        ),
    )
    if renewed.rowcount == 1:
        return True
    if session.get(LeaseRow, name) is not None:
        return False
    try:
        # In a savepoint, so a process that lost the race to make the row keeps its
        # transaction: PostgreSQL aborts the whole of one after a failed statement.
        with session.begin_nested():
            session.add(LeaseRow(name=name, holder=holder, expires_at=expires_at))
    except IntegrityError:
        return False
    return True


def release(session: Session, name: str, holder: str) -> None:
    """Give lease `name` up if `holder` holds it, so another process takes it at its next
    try rather than once it expires. Call in a writer session and commit."""
    session.execute(
        delete(LeaseRow)
        .where(LeaseRow.name == name, LeaseRow.holder == holder)
        .execution_options(synchronize_session=False)
    )


def running(session: Session) -> set[str]:
    """The holders whose `replica` lease has not expired: the hub processes still running."""
    rows = session.scalars(
        select(LeaseRow.holder).where(
            LeaseRow.name.startswith(_REPLICA, autoescape=True), LeaseRow.expires_at > utcnow()
        )
    )
    return set(rows)


def forget(session: Session) -> None:
    """Remove the `replica` leases of processes gone for good, one row each per start."""
    session.execute(
        delete(LeaseRow)
        .where(LeaseRow.name.startswith(_REPLICA, autoescape=True), LeaseRow.expires_at <= utcnow())
        .execution_options(synchronize_session=False)
    )
