"""The dashboard's login: an API token exchanged for a cookie the browser sends back."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import (
    SESSION_COOKIE,
    HubDep,
    ViewerDep,
    foreign_page,
    start_login,
)
from edgestack.hub.ratelimit import address, too_many
from edgestack.hub.store import sessions
from edgestack.protocol import Identity, Login

__all__ = ["router"]

router = APIRouter(tags=["session"])

LoginBody = Annotated[Login, Depends(json_body(Login))]


@router.post(
    "/login",
    operation_id="session-login",
    responses={
        401: {"description": "the token is no API token"},
        403: {"description": "the login comes from a page other than the hub's"},
        429: {"description": "too many failed logins from this address: wait Retry-After"},
    },
)
def login(login: LoginBody, hub: HubDep, request: Request, response: Response) -> Identity:
    """Check an API token and log it in: the HttpOnly, same-site cookie set holds a random
    id the hub keeps with the token, never the token, so the dashboard's scripts never hold
    it; every route takes the cookie as it takes the token, until logout, `sessions.LIFETIME_S`
    (12 h), or the token is revoked or expires.

    Failed logins are counted by client address: past `login_failures` in `login_window_s`
    (hub settings) the address is answered 429 with Retry-After, whatever it sends."""
    if foreign_page(request):
        # Or a page elsewhere could log the browser in as the page's owner, unnoticed.
        raise HTTPException(
            403, "a login is taken only from the hub's own page; open the hub's address to log in"
        )
    where = address(request)
    # Counted as a failure before the token is looked at, and given back if it is good: a
    # check and a later count would let guesses sent at once all through past the limit.
    if wait_s := hub.login_failures.take(where):
        raise too_many("failed logins", hub.login_failures, wait_s)
    started = start_login(login.token, hub)
    if started is None:
        raise HTTPException(
            401, "token: not an API token of this hub; ask an admin for one (`edgestack tokens`)"
        )
    hub.login_failures.refund(where)
    caller, login_id = started
    response.set_cookie(
        SESSION_COOKIE,
        login_id,
        max_age=sessions.LIFETIME_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return Identity(name=caller.name, role=caller.role)


@router.post("/logout", status_code=204, operation_id="session-logout")
def logout(hub: HubDep, request: Request) -> Response:
    """End the login on the hub, so its cookie, or any copy of it, opens nothing more, and
    forget the cookie."""
    if (login := request.cookies.get(SESSION_COOKIE)) is not None:
        with hub.db.writer() as session:
            sessions.end(session, login)
            session.commit()
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", operation_id="session-me")
def me(caller: ViewerDep) -> Identity:
    """Who the token or the login cookie speaks for, and with which role."""
    return Identity(name=caller.name, role=caller.role)
