"""What routes ask for: the running hub, a session, and who is calling."""

import hmac
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from sqlalchemy.orm import Session

from edgestack.hub.context import HubContext
from edgestack.hub.store import devices
from edgestack.hub.store.db import Window

__all__ = [
    "AdminDep",
    "ArtifactReaderDep",
    "DeviceDep",
    "HubDep",
    "SessionDep",
    "WindowDep",
    "WriteSessionDep",
    "matches",
]

_bearer = HTTPBearer(auto_error=False, description="the admin token or a device token")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _hub(request: Request) -> HubContext:
    hub: HubContext = request.app.state.hub
    return hub


HubDep = Annotated[HubContext, Depends(_hub)]


def _session(hub: HubDep) -> Iterator[Session]:
    with hub.db.session() as session:
        yield session


def _write_session(hub: HubDep) -> Iterator[Session]:
    with hub.db.writer() as session:
        yield session


# Closed as soon as the route returns, not after the answer is sent: a slow client must
# not hold a pooled connection.
SessionDep = Annotated[Session, Depends(_session, scope="function")]
WriteSessionDep = Annotated[Session, Depends(_write_session, scope="function")]


# SQLite's integers are 64-bit; a larger id would not reach the query.
_MAX_ID = 2**63 - 1


def _window(
    after_id: Annotated[int, Query(ge=0, le=_MAX_ID, description="only rows with a larger id")] = 0,
    before_id: Annotated[
        int | None, Query(ge=1, le=_MAX_ID, description="only rows with a smaller id")
    ] = None,
    order: Annotated[
        Literal["oldest", "newest"],
        Query(description="oldest first (follow with after_id) or newest first (before_id)"),
    ] = "oldest",
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many")] = 100,
) -> Window:
    return Window(
        after_id=after_id, before_id=before_id, newest_first=order == "newest", limit=limit
    )


# One page of a listing; the next starts after (or, newest first, before) its last id.
WindowDep = Annotated[Window, Depends(_window)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def matches(given: str, secret: SecretStr) -> bool:
    """Whether `given` is the secret, in a time that does not depend on where they differ."""
    return _same(given, secret.get_secret_value())


def _is_admin(credentials: HTTPAuthorizationCredentials | None, hub: HubContext) -> bool:
    return credentials is not None and matches(credentials.credentials, hub.settings.admin_token)


def _require_admin(hub: HubDep, credentials: Credentials) -> None:
    if not _is_admin(credentials, hub):
        raise _unauthorized(
            "this route needs the admin token: send 'Authorization: Bearer <token>' with the "
            "value of EDGESTACK_ADMIN_TOKEN set on the hub"
        )


def _authenticate_device(device_id: str, hub: HubDep, credentials: Credentials) -> str:
    # A short session of its own: a long-poll must not hold a connection while it waits.
    with hub.db.session() as session:
        stored = devices.token_hash(session, device_id)
    if stored is None:
        raise devices.not_enrolled(device_id)
    if credentials is None or not _same(devices.hash_token(credentials.credentials), stored):
        raise _unauthorized(
            f"device '{device_id}' needs its own device token: send 'Authorization: Bearer "
            "<device_token>' as returned by POST /v1/enrol; enrol again if it was lost"
        )
    return device_id


def _require_fleet_member(hub: HubDep, credentials: Credentials) -> None:
    if credentials is None:
        raise _unauthorized(
            "artifacts need a device token or the admin token: send 'Authorization: Bearer <token>'"
        )
    if _is_admin(credentials, hub):
        return
    with hub.db.session() as session:
        device_id = devices.device_for_token(session, devices.hash_token(credentials.credentials))
    if device_id is None:
        raise _unauthorized(
            "the token is neither a device token nor the admin token; enrol the device again "
            "with POST /v1/enrol for a fresh one"
        )


AdminDep = Annotated[None, Depends(_require_admin)]
"""The caller holds the admin token."""
DeviceDep = Annotated[str, Depends(_authenticate_device)]
"""The `device_id` of the path, whose device token the caller holds."""
ArtifactReaderDep = Annotated[None, Depends(_require_fleet_member)]
"""The caller holds the admin token or the token of any enrolled device."""
