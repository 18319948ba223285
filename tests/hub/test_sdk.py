"""The SDK covers the hub's whole API, derived from its OpenAPI document so that a new route
cannot go without a method, and answers wire models; the old /v1 paths answer as their
/api/v1 twins and stay out of the document."""

import httpx
import pytest
from fastapi import FastAPI

from edgestack.client import CALLED_ELSEWHERE, HubClient, HubError, covered_operations
from edgestack.hub.api import API_PREFIX, LEGACY_PREFIX
from edgestack.protocol import Identity, RetrainPolicy

from .factories import ADMIN, ENROL_TOKEN, HARDWARE, Enrol


def _operations(app: FastAPI) -> dict[str, str]:
    return {
        operation["operationId"]: f"{method.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
    }


def test_every_operation_of_the_api_has_a_client_method(app: FastAPI) -> None:
    operations = _operations(app)
    covered = covered_operations()

    missing = sorted(set(operations) - covered.keys() - CALLED_ELSEWHERE.keys())
    stale = sorted((covered.keys() | CALLED_ELSEWHERE.keys()) - operations.keys())

    assert not missing, "; ".join(
        f"{operation} ({operations[operation]}) has no method in edgestack.client.HubClient: "
        f'add a typed one answering its wire model, marked @_covers("{operation}"), or, if '
        "only devices or the dashboard call it, list it in CALLED_ELSEWHERE saying who"
        for operation in missing
    )
    assert not stale, f"no such operations in the API any more: {stale}; take them out"
    assert not covered.keys() & CALLED_ELSEWHERE.keys()


def test_the_event_stream_through_the_sdk_holds_what_the_listing_holds(
    sdk: HubClient, app_transport: httpx.BaseTransport
) -> None:
    with httpx.Client(transport=app_transport, base_url="http://hub") as device:
        for n in range(3):
            hardware = HARDWARE.model_dump()
            body = {"device_id": f"motor-{n}", "enrol_token": ENROL_TOKEN, "hardware": hardware}
            assert device.post("/api/v1/enrol", json=body).status_code == 200

    streamed = list(sdk.stream_events(follow=False))
    after_first = list(sdk.stream_events(after_id=streamed[0].id, follow=False))

    assert streamed == sdk.events()
    assert [e.device_id for e in streamed] == ["motor-0", "motor-1", "motor-2"]
    assert after_first == streamed[1:]


def test_the_sdk_reads_who_it_is_and_one_policy(sdk: HubClient) -> None:
    policy = RetrainPolicy(dataset="review", model="decision_tree", windows=4)

    with pytest.raises(HubError) as missing:
        sdk.policy("retrain-on-drift")
    sdk.set_policy("retrain-on-drift", policy)

    assert sdk.me() == Identity(name="hub-admin", role="admin")
    assert missing.value.status == 404
    assert sdk.policy("retrain-on-drift").policy == policy


class _Filled(dict[str, str]):
    """A value for each path parameter: one a route may take, else 1."""

    def __missing__(self, key: str) -> str:
        return {"device_id": "motor-1", "digest": "0" * 64}.get(key, "1")


@pytest.mark.anyio
async def test_the_old_paths_answer_as_their_twins_and_are_not_documented(
    client: httpx.AsyncClient, app: FastAPI, enrol: Enrol
) -> None:
    await enrol("motor-1")
    paths = app.openapi()["paths"]
    calls = [
        (method, path.removeprefix(API_PREFIX).format_map(_Filled()))
        for path, operations in paths.items()
        if path.startswith(API_PREFIX + "/")
        for method in operations
    ]
    differ = []
    for method, path in calls:
        asked = [{}, ADMIN] if method == "get" and not path.endswith("/stream") else [{}]
        for headers in asked:
            new = await client.request(method, API_PREFIX + path, headers=headers)
            old = await client.request(method, LEGACY_PREFIX + path, headers=headers)
            if (new.status_code, new.content) != (old.status_code, old.content):
                differ.append(f"{method.upper()} {path}: {new.status_code} and {old.status_code}")

    assert len(calls) >= 50
    assert not differ, differ
    assert not [path for path in paths if path.startswith(LEGACY_PREFIX + "/")]
