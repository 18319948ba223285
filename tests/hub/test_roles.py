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
    OffloaderDep,
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
_OFFLOADER = _dependency(OffloaderDep)
_AUDITED = {_dependency(AuditedOperatorDep), _dependency(AuditedAdminDep)}


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    operation: str
    # a role, "device", "fleet" (any device or admin), "offloader" (any device, for what its
    # twin allows, or an operator), or None
    guard: str | None
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
        if call is _OFFLOADER:
            return "offloader"
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


async def _answers(
    client: httpx.AsyncClient,
    routes: list[Route],
    expected: Callable[[Route], set[int] | None],
    headers: dict[str, str] | None = None,
    says: dict[int, str] | None = None,
    **path: str,
) -> list[str]:
    """The routes, called with `headers`, that do not answer as `expected(route)` says: with
    one of its statuses, its detail holding what `says` gives for that status; or, where it
    gives None, with anything but a refusal (401, 403)."""
    wrong = []
    for route in routes:
        response = await _call(client, route, headers, **path)
        allowed, status = expected(route), response.status_code
        if allowed is None:
            right = status not in (401, 403)
        else:
            right = status in allowed and (says or {}).get(status, "") in response.text
        if not right:
            wrong.append(f"{route}: {status} {response.text[:200]}")
    return wrong


GUARDED = [r for r in ROUTES if r.operation not in ANYONE]


async def test_a_call_without_a_token_is_refused(client: httpx.AsyncClient, device: Device) -> None:
    wrong = await _answers(client, GUARDED, lambda route: {401})

    assert not wrong, "\n".join(wrong)


async def test_a_viewer_reads_and_changes_nothing(
    client: httpx.AsyncClient, device: Device
) -> None:
    viewer = await _token(client, "viewer")

    def expected(route: Route) -> set[int] | None:
        if route.guard in ("device", "fleet"):
            return {401}
        if route.method != "GET" or route.guard == "admin":
            return {403}
        return None  # anything but a refusal

    wrong = await _answers(client, GUARDED, expected, viewer, {403: "has the viewer role"})

    assert not wrong, "\n".join(wrong)


async def test_a_device_token_reaches_its_own_device_only(
    client: httpx.AsyncClient, device: Device, enrol: Enrol
) -> None:
    await enrol("motor-2")
    routes = [r for r in ROUTES if r.guard == "device"]

    other = await _answers(
        client,
        routes,
        lambda r: {401},
        device.auth,
        {401: "device 'motor-2' needs its own device token"},
        device_id="motor-2",
    )
    own = await _answers(client, routes, lambda r: None, device.auth, device_id="motor-1")

    assert len(routes) >= 5
    assert not other, "\n".join(other)
    assert not own, "\n".join(own)


async def test_a_device_token_reaches_no_route_of_people(
    client: httpx.AsyncClient, device: Device
) -> None:
    routes = [r for r in ROUTES if r.guard in ("viewer", "operator", "admin")]

    wrong = await _answers(client, routes, lambda r: {401}, device.auth, {401: "role or above"})

    assert not wrong, "\n".join(wrong)


async def test_an_operator_controls_but_does_not_administer(
    client: httpx.AsyncClient, device: Device
) -> None:
    operator = await _token(client, "operator")
    routes = [r for r in ROUTES if r.guard in ("operator", "admin")]

    wrong = await _answers(
        client,
        routes,
        lambda r: {403} if r.guard == "admin" else None,
        operator,
        {403: "has the operator role"},
    )

    assert not wrong, "\n".join(wrong)


def test_every_control_route_is_audited_but_the_workers() -> None:
    unaudited = {r.operation for r in CONTROL if not r.audited}

    assert unaudited == UNAUDITED
    assert not [r for r in ROUTES if r.audited and r not in CONTROL]
