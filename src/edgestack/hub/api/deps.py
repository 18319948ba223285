"""What routes ask for: the running hub, a session, and who is calling."""

import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, cast
from urllib.parse import urlsplit

from fastapi import Depends, Header, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.requests import HTTPConnection
from fastapi.routing import APIRoute
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy.orm import Session

from edgestack.hub.context import HubContext
from edgestack.hub.store import audit, devices, sessions, tokens
from edgestack.hub.store.db import Window, utcnow
from edgestack.hub.store.tables import ApiTokenRow
from edgestack.protocol import (
    INT64_MAX,
    OLDEST_PROTOCOL,
    PROTOCOL,
    PROTOCOL_HEADER,
    ROLES,
    Role,
)

__all__ = [
    "SESSION_COOKIE",
    "AdminDep",
    "ArtifactReaderDep",
    "Audit",
    "AuditedAdminDep",
    "AuditedOperatorDep",
    "Caller",
    "CallerProtocolDep",
    "DeviceDep",
    "HubDep",
    "OffloaderDep",
    "OperatorDep",
    "SessionDep",
    "ViewerDep",
    "WindowDep",
    "WriteSessionDep",
    "check_protocol",
    "connection_caller",
    "foreign_page",
    "matches",
    "refuse_protocol",
    "start_login",
    "token_caller",
]

_bearer = HTTPBearer(auto_error=False, description="the admin token or a device token")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]

SESSION_COOKIE = "edgestack_session"
_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="the dashboard's login (POST /api/v1/login), a random id the hub keeps until "
    "logout; HttpOnly, same-site only",
)
SessionCookie = Annotated[str | None, Depends(_cookie)]


async def _hub(request: Request) -> HubContext:
    # Async although it awaits nothing: FastAPI runs a plain function on a worker thread,
    # a hop that cost each request more than the rest of its dependencies together.
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


def _window(
    after_id: Annotated[
        int, Query(ge=0, le=INT64_MAX, description="only rows with a larger id")
    ] = 0,
    before_id: Annotated[
        int | None, Query(ge=1, le=INT64_MAX, description="only rows with a smaller id")
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
# What a token for an unknown id is compared with: no sha256 hex digest equals it.
_NO_DEVICE = "no device"
_SPOKEN = f"{OLDEST_PROTOCOL}-{PROTOCOL}"
# Protocol 1 had no header: a call without one speaks it, whatever this hub speaks now.
_HEADERLESS = 1


def refuse_protocol(where: str, version: object) -> HTTPException:
    """The answer to a call in a protocol this hub does not speak, stated in `where`; its
    header names the range spoken, which tells an agent that no retry will help."""
    return HTTPException(
        400,
        f"{where}: protocol {version} is not spoken here; this hub speaks protocols "
        f"{OLDEST_PROTOCOL} to {PROTOCOL}: run an agent or client of a release that speaks one "
        "of them, or upgrade the hub",
        headers={PROTOCOL_HEADER: _SPOKEN},
    )


async def check_protocol(
    # Not named after anything a route's path holds (`version`), or it would be taken for it.
    protocol_header: Annotated[
        str | None,
        Header(
            alias=PROTOCOL_HEADER,
            description=f"the protocol the caller speaks, {OLDEST_PROTOCOL} to {PROTOCOL}; "
            f"{_HEADERLESS} when left out",
            max_length=20,
        ),
    ] = None,
) -> int:
    """The protocol the caller speaks; a call whose protocol this hub does not speak is
    refused."""
    # Async although it awaits nothing, as `_hub` is: it runs on every call.
    stated = str(_HEADERLESS) if protocol_header is None else protocol_header.strip()
    if (
        not (stated.isascii() and stated.isdigit())
        or not OLDEST_PROTOCOL <= int(stated) <= PROTOCOL
    ):
        raise refuse_protocol(PROTOCOL_HEADER, stated)
    return int(stated)


CallerProtocolDep = Annotated[int, Depends(check_protocol)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def matches(given: str, secret: SecretStr) -> bool:
    """Whether `given` is the secret, in a time that depends neither on where they differ nor
    on the secret's length: their hashes are compared."""
    return hmac.compare_digest(
        devices.hash_token(given), devices.hash_token(secret.get_secret_value())
    )


@dataclass(frozen=True)
class Caller:
    """Who makes a call for a person or an outside application: the token's name and role."""

    name: str
    role: Role

    def may(self, role: Role) -> bool:
        """Whether this caller holds `role` or one above it."""
        return ROLES.index(self.role) >= ROLES.index(role)


# The token set on the hub itself; it cannot be revoked through the API, only by restarting
# the hub with another.
_HUB_ADMIN = Caller(name="hub-admin", role="admin")


def token_caller(token: str, hub: HubContext) -> Caller | None:
    """Who `token` speaks for; None when it is no API token, or one revoked or expired."""
    found = _identify(token, hub)
    return found if isinstance(found, Caller) else None


def _identify(token: str, hub: HubContext) -> Caller | str | None:
    """Who `token` speaks for; for a named token that no longer works, why; None when it is
    no API token."""
    if matches(token, hub.settings.admin_token):
        return _HUB_ADMIN
    # Device tokens carry no prefix: they cost no look-up here.
    if not token.startswith(tokens.PREFIX):
        return None
    with hub.db.session() as session:
        row = tokens.by_secret(session, token)
    if row is None:
        return None
    return _named(row, utcnow())


def _named(row: ApiTokenRow, now: datetime) -> Caller | str:
    """Who the named token `row` speaks for, or why it no longer works at `now`."""
    return tokens.why_dead(row, now) or Caller(name=row.name, role=cast(Role, row.role))


def _admin_sha256(hub: HubContext) -> str:
    return devices.hash_token(hub.settings.admin_token.get_secret_value())


def start_login(token: str, hub: HubContext) -> tuple[Caller, str] | None:
    """Log `token` in: who it speaks for and the id of a new login, the cookie's value,
    which stands for the token until logout, expiry, or the token stops working. None when
    it is no working API token."""
    caller = token_caller(token, hub)
    if caller is None:
        return None
    with hub.db.writer() as session:
        if caller is _HUB_ADMIN:
            # Its hash, not a reference: a hub started with another admin token must not
            # honour the logins of the old one.
            login = sessions.start(session, token_id=None, admin_sha256=_admin_sha256(hub))
        else:
            named = tokens.get(session, caller.name)
            login = sessions.start(session, token_id=named.id, admin_sha256=None)
        session.commit()
    return caller, login


def _logged_in(login: str, hub: HubContext) -> Caller | str | None:
    """Who the login `login` speaks for, checking again that the token it was made from
    works; for a named token that no longer does, why; None when it is no live login."""
    now = utcnow()
    with hub.db.session() as session:
        row = sessions.find(session, login)
        if row is None:
            return None
        if row.expires_at > now:
            if row.token_id is None:
                same = hmac.compare_digest(row.admin_sha256 or "", _admin_sha256(hub))
                return _HUB_ADMIN if same else None
            return _named(session.get_one(ApiTokenRow, row.token_id), now)
    # Expired: forgotten once seen, as logins nobody comes back with are at the next login.
    with hub.db.writer() as session:
        sessions.end(session, login)
        session.commit()
    return None


def _caller(
    credentials: HTTPAuthorizationCredentials | None, cookie: str | None, hub: HubContext
) -> Caller | str | None:
    # A bearer token wins over the dashboard's cookie: a script's explicit token is meant.
    if credentials is not None:
        return _identify(credentials.credentials, hub)
    return None if cookie is None else _logged_in(cookie, hub)


def connection_caller(conn: HTTPConnection, hub: HubContext) -> Caller | None:
    """Who calls on `conn`, a request or a WebSocket, which no route dependency reads: its
    bearer token, else its login cookie; None when neither is a working API token or live
    login."""
    scheme, _, token = conn.headers.get("authorization", "").partition(" ")
    credentials = (
        HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
        if scheme.lower() == "bearer" and token.strip()
        else None
    )
    caller = _caller(credentials, conn.cookies.get(SESSION_COOKIE), hub)
    return caller if isinstance(caller, Caller) else None


def _is_admin(credentials: HTTPAuthorizationCredentials | None, hub: HubContext) -> bool:
    caller = _caller(credentials, None, hub)
    return isinstance(caller, Caller) and caller.may("admin")


# What a page may do with the login cookie whatever site it comes from: read. A cross-origin
# page cannot read the answers (the hub sends no CORS headers), but could send changes.
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def foreign_page(conn: HTTPConnection) -> bool:
    """Whether a browser says the call comes from a page other than the hub's own. SameSite
    keeps the cookie from other sites, but another port of the same host, or a sibling
    domain, is the same site; the Origin header tells them apart. A browser sends it with
    every call that can change something; a call without one is not trusted with the
    cookie either (see `_requiring`)."""
    origin = conn.headers.get("origin")
    fetched_from = conn.headers.get("sec-fetch-site", "same-origin")
    return fetched_from not in ("same-origin", "none") or (
        origin is not None and urlsplit(origin).netloc != conn.headers.get("host")
    )


def _requiring(role: Role) -> Callable[..., Caller]:
    def require(
        request: Request, hub: HubDep, credentials: Credentials, cookie: SessionCookie
    ) -> Caller:
        if (
            credentials is None
            and cookie is not None
            and request.method not in _SAFE_METHODS
            and ("origin" not in request.headers or foreign_page(request))
        ):
            raise HTTPException(
                403,
                "the login cookie changes nothing from a page other than the hub's own "
                f"(Origin: {request.headers.get('origin', 'none')[:100]}); send "
                "'Authorization: Bearer <token>' instead",
            )
        caller = _caller(credentials, cookie, hub)
        if isinstance(caller, str):
            raise _unauthorized(
                f"{caller}; ask an admin for a new one (`edgestack tokens create`) and log in "
                "or send it again"
            )
        if caller is None:
            raise _unauthorized(
                f"this route needs a token with the {role} role or above: send "
                "'Authorization: Bearer <token>' with a token made by `edgestack tokens create`"
                " or the hub's EDGESTACK_ADMIN_TOKEN"
            )
        if not caller.may(role):
            raise HTTPException(
                403,
                f"token '{caller.name}' has the {caller.role} role; this route needs {role} or "
                "above: ask an admin for such a token",
            )
        return caller

    # Read by the role tests, which derive each route's role from its dependencies.
    require.role = role  # type: ignore[attr-defined]
    return require


class Audit:
    """A control action on its way into the audit log: who (`caller`), what (`action`, the
    route's operation id, on `target`, by default the path's ids), and the state it changed,
    set by the route with `changed`.

    The row is added to the route's write session when it commits, in the same
    transaction: an action refused or failed before it commits leaves no row, and one that
    commits cannot lose its row.
    """

    def __init__(self, caller: Caller, action: str, target: str | None) -> None:
        self.caller = caller
        self.action = action
        self.target = target
        self.before: Any = None
        self.after: Any = None

    def changed(self, before: Any, after: Any) -> None:
        """Record the state before the action (None for a create) and after it: pydantic
        models, lists and dicts of them, or plain JSON."""
        self.before = jsonable_encoder(before)
        self.after = jsonable_encoder(after)

    def _write(self, session: Session) -> None:
        audit.record(
            session,
            actor=self.caller.name,
            role=self.caller.role,
            action=self.action,
            target=self.target,
            before=self.before,
            after=self.after,
        )


def _auditing(role: Role) -> Callable[..., Audit]:
    def auditing(
        request: Request,
        caller: Annotated[Caller, Depends(_requiring(role))],
        session: WriteSessionDep,
    ) -> Audit:
        route: APIRoute = request.scope["route"]
        target = "/".join(str(v) for v in request.path_params.values()) or None
        recorder = Audit(caller, route.operation_id or route.name, target)
        # FastAPI solves a dependency once per request: the route's WriteSessionDep is this.
        event.listen(session, "before_commit", recorder._write, once=True)
        return recorder

    return auditing


async def _authenticate_device(device_id: str, hub: HubDep, credentials: Credentials) -> str:
    stored = hub.device_tokens.get(device_id)
    if stored is None:
        mark = hub.device_tokens.mark()
        stored = await hub.reads.store(devices.token_hashes, device_id)
        if stored is not None:
            hub.device_tokens.put(device_id, stored, mark)
    # An unknown id gets the same answer as a wrong token, so ids cannot be probed for.
    given = "" if credentials is None else devices.hash_token(credentials.credentials)
    if not hmac.compare_digest(given, stored or _NO_DEVICE):
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


_require_operator = _requiring("operator")


def _offloader(
    request: Request, hub: HubDep, credentials: Credentials, cookie: SessionCookie
) -> Caller | str:
    if credentials is not None:
        with hub.db.session() as session:
            device_id = devices.device_for_token(
                session, devices.hash_token(credentials.credentials)
            )
        if device_id is not None:
            return device_id
    return _require_operator(request, hub, credentials, cookie)


ViewerDep = Annotated[Caller, Depends(_requiring("viewer"))]
"""The caller may read the fleet."""
OperatorDep = Annotated[Caller, Depends(_requiring("operator"))]
"""The caller may control devices, models and data."""
AdminDep = Annotated[Caller, Depends(_requiring("admin"))]
"""The caller may manage tokens, webhooks, keys and workers."""
AuditedOperatorDep = Annotated[Audit, Depends(_auditing("operator"))]
"""The caller may control devices, models and data, and what it does goes into the audit
log when the route's write session commits."""
AuditedAdminDep = Annotated[Audit, Depends(_auditing("admin"))]
"""The caller may manage tokens and keys, and what it does goes into the audit log when the
route's write session commits."""
DeviceDep = Annotated[str, Depends(_authenticate_device)]
"""The `device_id` of the path, whose device token the caller holds."""
ArtifactReaderDep = Annotated[None, Depends(_require_fleet_member)]
OffloaderDep = Annotated[Caller | str, Depends(_offloader)]
"""An enrolled device, by the id its device token is for (what it may ask is the route's to
check), or a caller with the operator role or above."""
"""The caller holds the admin token or the token of any enrolled device."""
