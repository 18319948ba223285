"""Tags on devices, and the targets that pick devices by them: ids, tag:key=value, all."""

from typing import Any

import httpx
import pytest

from edgestack.protocol import MAX_TAGS, ReportedState

from .factories import ADMIN, HARDWARE, Device, Ready, packed_bundle

pytestmark = pytest.mark.anyio

RAW = {**ADMIN, "Content-Type": "application/octet-stream"}


async def _tag(client: httpx.AsyncClient, device_id: str, **body: Any) -> httpx.Response:
    return await client.patch(f"/api/v1/devices/{device_id}/tags", json=body, headers=ADMIN)


async def _fleet(client: httpx.AsyncClient, ready: Ready) -> dict[str, Device]:
    """motor-1 and motor-2 on plant-4 (line 1 and 2), motor-3 on plant-5, motor-1 registered."""
    fleet = {}
    for device_id, tags in [
        ("motor-1", {"site": "plant-4", "line": "1"}),
        ("motor-2", {"site": "plant-4", "line": "2"}),
        ("motor-3", {"site": "plant-5", "line": "2"}),
    ]:
        fleet[device_id] = await ready(device_id)
        assert (await _tag(client, device_id, tags=tags)).status_code == 200
    data = packed_bundle("motor", 1, model=b"model v1")
    assert (await client.post("/api/v1/models", content=data, headers=RAW)).status_code == 201
    return fleet


async def _bundles(client: httpx.AsyncClient) -> dict[str, Any]:
    views = (await client.get("/api/v1/devices", headers=ADMIN)).json()
    return {view["device_id"]: view["desired"]["bundle"] for view in views}


async def test_tags_are_set_changed_and_removed_and_shown_with_the_device(
    client: httpx.AsyncClient, ready: Ready
) -> None:
    await ready("motor-1")

    first = await _tag(client, "motor-1", tags={"site": "plant-4", "line": "2"})
    second = await _tag(client, "motor-1", tags={"line": "3"}, remove=["site"])
    view = (await client.get("/api/v1/devices/motor-1", headers=ADMIN)).json()

    assert first.status_code == 200, first.text
    assert first.json()["tags"] == {"line": "2", "site": "plant-4"}
    assert second.json()["tags"] == {"line": "3"}
    assert view["tags"] == {"line": "3"}


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"tags": {"Site": "a"}}, "body.tags.Site"),
        ({"tags": {"site": "plant 4"}}, "body.tags.site"),
        ({"tags": {"site": "a=b"}}, "body.tags.site"),
        ({"remove": ["no such key!"]}, "body.remove[0]"),
        ({"tags": {"site": "a"}, "remove": ["site"]}, "remove: site also set in tags"),
        ({"labels": {"site": "a"}}, "body.labels"),
        (
            {"tags": {f"k{i}": "v" for i in range(MAX_TAGS + 1)}},
            "body.tags",
        ),
    ],
)
async def test_a_bad_tag_is_422_naming_the_field_and_changes_nothing(
    client: httpx.AsyncClient, ready: Ready, body: dict[str, Any], detail: str
) -> None:
    await ready("motor-1")
    await _tag(client, "motor-1", tags={"site": "plant-4"})

    response = await _tag(client, "motor-1", **body)
    view = (await client.get("/api/v1/devices/motor-1", headers=ADMIN)).json()

    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(detail)
    assert view["tags"] == {"site": "plant-4"}


async def test_tags_beyond_the_most_a_device_may_carry_are_refused(
    client: httpx.AsyncClient, ready: Ready
) -> None:
    await ready("motor-1")
    await _tag(client, "motor-1", tags={f"k{i}": "v" for i in range(MAX_TAGS)})

    refused = await _tag(client, "motor-1", tags={"one-more": "v"})
    replaced = await _tag(client, "motor-1", tags={"one-more": "v"}, remove=["k0"])

    assert refused.status_code == 422
    assert f"at most {MAX_TAGS}" in refused.json()["detail"]
    assert replaced.status_code == 200
    assert len(replaced.json()["tags"]) == MAX_TAGS


async def test_tagging_a_device_not_enrolled_is_404(client: httpx.AsyncClient) -> None:
    response = await _tag(client, "ghost", tags={"site": "a"})

    assert response.status_code == 404
    assert "'ghost' is not enrolled" in response.json()["detail"]


@pytest.mark.parametrize(
    ("to", "chosen"),
    [
        (["tag:site=plant-4"], ["motor-1", "motor-2"]),
        (["tag:site=plant-4,line=2"], ["motor-2"]),
        (["tag:line=2"], ["motor-2", "motor-3"]),
        (["tag:site=plant-5", "motor-1"], ["motor-1", "motor-3"]),
        (["all"], ["motor-1", "motor-2", "motor-3"]),
    ],
)
async def test_a_deployment_goes_to_the_devices_its_targets_name(
    client: httpx.AsyncClient, ready: Ready, to: list[str], chosen: list[str]
) -> None:
    await _fleet(client, ready)

    response = await client.post(
        "/api/v1/deployments", json={"model": "motor", "to": to}, headers=ADMIN
    )
    bundles = await _bundles(client)

    assert response.status_code == 200, response.text
    assert response.json()["devices"] == chosen
    assert sorted(d for d, bundle in bundles.items() if bundle is not None) == chosen


@pytest.mark.parametrize(
    ("to", "status", "detail"),
    [
        (["tag:site=plant-9"], 404, "to: no enrolled device matches tag:site=plant-9"),
        (["tag:site=plant-4,line=3", "motor-1"], 404, "matches tag:site=plant-4,line=3"),
        (["motor-1", "ghost"], 404, "devices not enrolled: ghost"),
        (["tag:site"], 422, "body.to[0]: Value error, 'site' in 'tag:site' is no tag"),
        (["tag:Site=a"], 422, "body.to[0]: Value error, 'Site=a'"),
        (["site=plant-4"], 422, "body.to[0]: Value error, 'site=plant-4' is no target"),
        (["tag:"], 422, "body.to[0]"),
    ],
)
async def test_a_target_that_is_malformed_or_matches_nothing_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, ready: Ready, to: list[str], status: int, detail: str
) -> None:
    await _fleet(client, ready)

    response = await client.post(
        "/api/v1/deployments", json={"model": "motor", "to": to}, headers=ADMIN
    )
    bundles = await _bundles(client)

    assert response.status_code == status, response.text
    assert response.json()["detail"].startswith(detail) or detail in response.json()["detail"]
    assert set(bundles.values()) == {None}


@pytest.mark.parametrize(
    ("query", "listed"),
    [
        ("", ["motor-1", "motor-2", "motor-3"]),
        ("?tag=site=plant-4", ["motor-1", "motor-2"]),
        ("?tag=site=plant-4&tag=line=2", ["motor-2"]),
        ("?tag=line=2&status=running", ["motor-3"]),
        ("?status=idle", ["motor-1", "motor-2"]),
        ("?tag=site=plant-9", []),
    ],
)
async def test_devices_are_listed_by_the_tags_they_all_carry_and_their_status(
    client: httpx.AsyncClient, ready: Ready, query: str, listed: list[str]
) -> None:
    fleet = await _fleet(client, ready)
    running = ReportedState(desired_version=0, status="running", hardware=HARDWARE)
    motor_3 = await client.put(
        "/api/v1/devices/motor-3/reported",
        content=running.model_dump_json(),
        headers=fleet["motor-3"].auth,
    )
    assert motor_3.status_code == 200, motor_3.text

    response = await client.get(f"/api/v1/devices{query}", headers=ADMIN)

    assert response.status_code == 200, response.text
    assert [view["device_id"] for view in response.json()] == listed


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("?tag=site", "query.tag[0]: Value error, 'site' is no tag"),
        ("?tag=site=a&tag=Line=2", "query.tag[1]: Value error, 'Line=2' is no tag"),
        ("?status=asleep", "query.status: Input should be 'idle'"),
    ],
)
async def test_a_malformed_device_filter_is_422_naming_it(
    client: httpx.AsyncClient, query: str, detail: str
) -> None:
    response = await client.get(f"/api/v1/devices{query}", headers=ADMIN)

    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail), response.text
