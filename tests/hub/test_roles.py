"""Who may call what, derived from the app's routes: each route's guard is read off its
dependencies, so a route added later is checked as soon as it exists, and one with no guard
fails here unless it joins the short list of routes anyone may call."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from edgestack.hub import HubSettings, create_app
from edgestack.hub.api import API_PREFIX
from edgestack.hub.api.deps import (
    ArtifactReaderDep,
    AuditedAdminDep,
    AuditedOperatorDep,
    DeviceDep,
)

from .factories import ADMIN, Device, Enrol

pytestmark = pytest.mark.anyio

# Called before anyone holds a token: to get one, or to drop a login.
ANYONE = {"session-login", "session-logout", "enrolment-enrol"}
# The hub's own worker claims jobs and reports on them many times a job; the job's submit
# and cancel are what people do, and those are audited.
UNAUDITED = {"jobs-claim", "jobs-report"}
# Values of path parameters that pass validation; a route's guard answers first.
_PATH_VALUES = {"device_id": "motor-1", "digest": "0" * 64, "name": "retrain-on-drift"}


def _dependency(alias: Any) -> Callable[..., Any]:
    call: Callable[..., Any] = get_args(alias)[1].dependency
    return call


_DEVICE = _dependency(DeviceDep)
_FLEET = _dependency(ArtifactReaderDep)
_AUDITED = {_dependency(AuditedOperatorDep), _dependency(AuditedAdminDep)}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    operation: str
    guard: str | None  # a role, "device", "fleet" (any device or admin), or None
    audited: bool

    def url(self, **values: str) -> str:
        given = {**_PATH_VALUES, **values}
        return re.sub(r"\{(\w+)[^}]*\}", lambda m: given.get(m[1], "1"), self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _calls(dependant: Dependant) -> list[Callable[..., Any]]:
    return [
        call
        for dependency in dependant.dependencies
        for call in [dependency.call, *_calls(dependency)]
        if call is not None
    ]


def _guard(calls: list[Callable[..., Any]]) -> str | None:
    for call in calls:
        if role := getattr(call, "role", None):
            return str(role)
        if call is _DEVICE:
            return "device"
        if call is _FLEET:
            return "fleet"
    return None


def routes(app: FastAPI) -> list[Route]:
    """Every method of every route of the app under the API's prefix."""
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not context.path.startswith(API_PREFIX + "/"):
            continue
        calls = _calls(route.dependant)
        for method in sorted(context.methods or ()):
            found.append(
                Route(
                    method,
                    context.path,
                    route.operation_id or route.name,
                    _guard(calls),
                    any(call in _AUDITED for call in calls),
                )
            )
    return found


ROUTES = routes(create_app(HubSettings()))
CONTROL = [r for r in ROUTES if r.method != "GET" and r.guard in ("operator", "admin")]


def _ids(routes: list[Route]) -> list[str]:
    return [r.operation for r in routes]


async def _call(
    client: httpx.AsyncClient, route: Route, headers: dict[str, str] | None = None, **path: str
) -> httpx.Response:
    # follow=false: a stream a caller may open ends at once; wait=0: so does a long-poll.
    return await client.request(
        route.method,
        route.url(**path),
        params={"follow": "false", "wait": 0},
        content=b"{}",
        headers={"Content-Type": "application/json", **(headers or {})},
    )


async def _token(client: httpx.AsyncClient, role: str) -> dict[str, str]:
    body = {"name": f"a-{role}", "role": role}
    response = await client.post("/api/v1/tokens", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_every_route_has_a_guard_but_the_few_anyone_may_call() -> None:
    unguarded = {r.operation for r in ROUTES if r.guard is None}

    assert unguarded == ANYONE
    assert len(ROUTES) > 50


@pytest.mark.parametrize("route", [r for r in ROUTES if r.operation not in ANYONE], ids=str)
async def test_a_call_without_a_token_is_refused(
    client: httpx.AsyncClient, device: Device, route: Route
) -> None:
    response = await _call(client, route)

    assert response.status_code == 401, response.text


@pytest.mark.parametrize("route", [r for r in ROUTES if r.operation not in ANYONE], ids=str)
async def test_a_viewer_reads_and_changes_nothing(
    client: httpx.AsyncClient, device: Device, route: Route
) -> None:
    viewer = await _token(client, "viewer")

    response = await _call(client, route, viewer)

    if route.guard in ("device", "fleet"):
        assert response.status_code == 401, response.text
    elif route.method != "GET" or route.guard == "admin":
        assert response.status_code == 403, response.text
        assert "has the viewer role" in response.json()["detail"]
    else:
        assert response.status_code not in (401, 403), response.text


@pytest.mark.parametrize("route", [r for r in ROUTES if r.guard == "device"], ids=str)
async def test_a_device_token_reaches_its_own_device_only(
    client: httpx.AsyncClient, device: Device, enrol: Enrol, route: Route
) -> None:
    await enrol("motor-2")

    other = await _call(client, route, device.auth, device_id="motor-2")
    own = await _call(client, route, device.auth, device_id="motor-1")

    assert other.status_code == 401, other.text
    assert "device 'motor-2' needs its own device token" in other.json()["detail"]
    assert own.status_code not in (401, 403), own.text


@pytest.mark.parametrize(
    "route", [r for r in ROUTES if r.guard in ("viewer", "operator", "admin")], ids=str
)
async def test_a_device_token_reaches_no_route_of_people(
    client: httpx.AsyncClient, device: Device, route: Route
) -> None:
    response = await _call(client, route, device.auth)

    assert response.status_code == 401, response.text
    assert "role or above" in response.json()["detail"]


@pytest.mark.parametrize("route", [r for r in ROUTES if r.guard in ("operator", "admin")], ids=str)
async def test_an_operator_controls_but_does_not_administer(
    client: httpx.AsyncClient, device: Device, route: Route
) -> None:
    operator = await _token(client, "operator")

    response = await _call(client, route, operator)

    if route.guard == "admin":
        assert response.status_code == 403, response.text
        assert "has the operator role" in response.json()["detail"]
    else:
        assert response.status_code not in (401, 403), response.text


def test_every_control_route_is_audited_but_the_workers() -> None:
    unaudited = {r.operation for r in CONTROL if not r.audited}

    assert unaudited == UNAUDITED
    assert not [r for r in ROUTES if r.audited and r not in CONTROL]
