"""Named API tokens: made with a role, kept as a hash, revoked by name."""

import secrets
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from edgestack.hub.errors import Conflict, NotFound
from edgestack.hub.store.db import utcnow
from edgestack.hub.store.devices import hash_token
from edgestack.hub.store.tables import ApiTokenRow
from edgestack.protocol import Role, TokenCreate, TokenSecret, TokenView

__all__ = [
    "PREFIX",
    "RESERVED",
    "by_secret",
    "create",
    "find",
    "get",
    "listing",
    "revoke",
    "view",
    "why_dead",
]

PREFIX = "est_"
"""What every named token starts with, so a leaked one is recognised by secret scanners."""
RESERVED = "hub-admin"
"""The name the hub's own EDGESTACK_ADMIN_TOKEN goes by, which no named token may take."""


def create(session: Session, request: TokenCreate, created_by: str) -> TokenSecret:
    """Make the token `request` describes; its secret is in the answer and nowhere else.
    A name taken, even by a revoked token, is refused: the audit log names tokens."""
    if request.name == RESERVED or find(session, request.name) is not None:
        raise Conflict(
            f"name: a token named '{request.name}' exists already (or the name is reserved); "
            "choose another name, or revoke and keep the old one: names stay unique"
        )
    secret = PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    expires = None if request.expires_days is None else now + timedelta(days=request.expires_days)
    row = ApiTokenRow(
        name=request.name,
        role=request.role,
        token_sha256=hash_token(secret),
        created_at=now,
        created_by=created_by,
        expires_at=expires,
        revoked_at=None,
    )
    session.add(row)
    session.flush()
    return TokenSecret(**view(row).model_dump(), token=secret)


def find(session: Session, name: str) -> ApiTokenRow | None:
    return session.scalar(select(ApiTokenRow).where(ApiTokenRow.name == name))


def get(session: Session, name: str) -> ApiTokenRow:
    row = find(session, name)
    if row is None:
        raise NotFound(f"no token named '{name}'; `edgestack tokens list` shows them")
    return row


def by_secret(session: Session, token: str) -> ApiTokenRow | None:
    """The named token whose secret is `token`, working or not; None when there is none."""
    return session.scalar(select(ApiTokenRow).where(ApiTokenRow.token_sha256 == hash_token(token)))


def why_dead(row: ApiTokenRow, now: datetime) -> str | None:
    """Why the token no longer works at `now` (revoked, expired), or None while it does."""
    if row.revoked_at is not None:
        return f"token '{row.name}' was revoked at {row.revoked_at:%Y-%m-%d %H:%M}Z"
    if row.expires_at is not None and row.expires_at <= now:
        return f"token '{row.name}' expired at {row.expires_at:%Y-%m-%d %H:%M}Z"
    return None


def listing(session: Session) -> list[TokenView]:
    """Every token, revoked ones too, by name."""
    return [view(row) for row in session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.name))]


def revoke(session: Session, name: str) -> ApiTokenRow:
    """Stop the token working from now on; 409 when it was revoked already."""
    row = get(session, name)
    if row.revoked_at is not None:
        raise Conflict(f"token '{name}' was revoked already, at {row.revoked_at:%Y-%m-%d %H:%M}Z")
    row.revoked_at = utcnow()
    return row


def view(row: ApiTokenRow) -> TokenView:
    return TokenView(
        name=row.name,
        role=cast(Role, row.role),
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )
