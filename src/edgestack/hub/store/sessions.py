"""Dashboard logins: a random id in the browser's cookie, its hash and the token it stands
for on the hub, so a logout or a revoked token ends the login wherever its cookie went."""

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from edgestack.hub.store.db import utcnow
from edgestack.hub.store.devices import hash_token
from edgestack.hub.store.tables import LoginSessionRow

__all__ = ["LIFETIME_S", "end", "find", "forget_expired", "start"]

LIFETIME_S = 12 * 3600
"""How long a login lasts unless logged out before."""


def start(session: Session, *, token_id: int | None, admin_sha256: str | None) -> str:
    """Open a login for the named token `token_id`, or, when None, for the hub's admin token
    whose sha256 is `admin_sha256`; the answer is its id, kept nowhere but in the cookie.
    Logins expired by now are swept away first."""
    now = utcnow()
    forget_expired(session, now)
    session_id = secrets.token_urlsafe(32)
    session.add(
        LoginSessionRow(
            id_sha256=hash_token(session_id),
            token_id=token_id,
            admin_sha256=admin_sha256,
            created_at=now,
            expires_at=now + timedelta(seconds=LIFETIME_S),
        )
    )
    return session_id


def find(session: Session, session_id: str) -> LoginSessionRow | None:
    """The login whose id is `session_id`, expired or not; None when there is none."""
    return session.scalar(
        select(LoginSessionRow).where(LoginSessionRow.id_sha256 == hash_token(session_id))
    )


def end(session: Session, session_id: str) -> None:
    """Forget the login whose id is `session_id`, if there is one."""
    session.execute(
        delete(LoginSessionRow).where(LoginSessionRow.id_sha256 == hash_token(session_id))
    )


def forget_expired(session: Session, now: datetime) -> None:
    """Forget every login expired at `now`."""
    session.execute(delete(LoginSessionRow).where(LoginSessionRow.expires_at <= now))
