import httpx
import pytest

from edgestack.hub.context import HubContext
from edgestack.hub.store.tables import SampleRow, SpecRow
from edgestack.protocol import DatasetView

from .factories import ADMIN, SPEC, Device, Enrol, collecting, count, sample_batch

pytestmark = pytest.mark.anyio


async def test_samples_are_stored_once_with_their_spec(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    batch = sample_batch(2, 2, 2, label="worn")
    await collecting(client, "motor-1", "worn")

    first = await client.post(
        "/api/v1/devices/motor-1/samples", content=batch.model_dump_json(), headers=device.auth
    )
    again = await client.post(
        "/api/v1/devices/motor-1/samples", content=batch.model_dump_json(), headers=device.auth
    )

    assert first.json()["accepted"] == 3
    assert again.json()["duplicate"] is True
    dataset = DatasetView.model_validate_json(
        (await client.get("/api/v1/samples", headers=ADMIN)).content
    )
    assert dataset.specs == {SPEC.fingerprint(): SPEC}
    assert [s.features for s in dataset.samples] == [s.features for s in batch.samples]
    assert {(s.device_id, s.label, s.spec) for s in dataset.samples} == {
        ("motor-1", "worn", SPEC.fingerprint())
    }
    assert count(hub, SampleRow) == 3


async def test_samples_filter_by_label_and_device(
    client: httpx.AsyncClient, device: Device, enrol: Enrol
) -> None:
    other = await enrol("motor-2")
    for who, label in ((device, "normal"), (device, "worn"), (other, "worn")):
        await collecting(client, who.device_id, label)
        await client.post(
            f"/api/v1/devices/{who.device_id}/samples",
            content=sample_batch(2, label=label).model_dump_json(),
            headers=who.auth,
        )

    worn = await client.get("/api/v1/samples", params={"label": "worn"}, headers=ADMIN)
    mine = await client.get(
        "/api/v1/samples", params={"label": "worn", "device": "motor-1"}, headers=ADMIN
    )
    none = await client.get("/api/v1/samples", params={"label": "imbalance"}, headers=ADMIN)

    assert {(s["device_id"], s["label"]) for s in worn.json()["samples"]} == {
        ("motor-1", "worn"),
        ("motor-2", "worn"),
    }
    assert [(s["device_id"], s["label"]) for s in mine.json()["samples"]] == [("motor-1", "worn")]
    assert none.json() == {"specs": {}, "samples": []}


async def test_a_sample_with_the_wrong_feature_count_is_refused_with_its_index(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    batch = sample_batch(2, 3)
    await collecting(client, "motor-1")

    response = await client.post(
        "/api/v1/devices/motor-1/samples", content=batch.model_dump_json(), headers=device.auth
    )

    assert response.status_code == 422
    assert response.json()["detail"].startswith(
        "body.samples[1].features: has 3 values but spec.features names 2"
    )
    assert count(hub, SampleRow) == 0
    assert count(hub, SpecRow) == 0


async def test_samples_page_by_id_oldest_or_newest_first(
    client: httpx.AsyncClient, device: Device
) -> None:
    await collecting(client, "motor-1")
    await client.post(
        "/api/v1/devices/motor-1/samples",
        content=sample_batch(2, 2, 2, 2, 2).model_dump_json(),
        headers=device.auth,
    )

    first = DatasetView.model_validate_json(
        (await client.get("/api/v1/samples", params={"limit": 2}, headers=ADMIN)).content
    )
    after = first.samples[-1].id
    assert after is not None
    rest = DatasetView.model_validate_json(
        (await client.get("/api/v1/samples", params={"after_id": after}, headers=ADMIN)).content
    )
    newest = DatasetView.model_validate_json(
        (
            await client.get(
                "/api/v1/samples", params={"order": "newest", "limit": 2}, headers=ADMIN
            )
        ).content
    )

    ids = [s.id for s in first.samples + rest.samples]
    assert [s.features for s in first.samples + rest.samples] == [[float(i)] * 2 for i in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert [s.id for s in newest.samples] == ids[:2:-1]
    assert first.specs == rest.specs == {SPEC.fingerprint(): SPEC}


async def test_a_device_never_asked_to_collect_may_send_no_samples(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    batch = sample_batch(2, 2, label="bearing_wear")

    response = await client.post(
        "/api/v1/devices/motor-1/samples", content=batch.model_dump_json(), headers=device.auth
    )

    assert response.status_code == 403
    assert response.json()["detail"] == (
        "body.samples[0]: device 'motor-1' may not send samples labelled 'bearing_wear' into "
        "dataset 'default': its desired state asks for no collection; an operator sets it "
        "with `edgestack data collect`"
    )
    assert count(hub, SampleRow) == 0


@pytest.mark.parametrize(
    ("label", "dataset"),
    # labels a collection could not even hold: refused alike, never a 5xx
    [
        ("worn", "default"),
        ("normal", "other"),
        ("worn", "other"),
        (":", "default"),
        ("Worn Out", "default"),
    ],
)
async def test_samples_outside_the_asked_collection_are_refused_naming_it(
    client: httpx.AsyncClient, hub: HubContext, device: Device, label: str, dataset: str
) -> None:
    await collecting(client, "motor-1", "normal", "default")
    batch = sample_batch(2, 2).model_copy(update={"dataset": dataset})
    batch.samples[1] = batch.samples[1].model_copy(update={"label": label})

    response = await client.post(
        "/api/v1/devices/motor-1/samples", content=batch.model_dump_json(), headers=device.auth
    )

    assert response.status_code == 403
    assert "asks for label 'normal' into dataset 'default'" in response.json()["detail"]
    assert count(hub, SampleRow) == 0


async def test_the_last_samples_of_the_previous_collection_still_arrive(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    await collecting(client, "motor-1", "worn", "bearings")
    await client.patch("/api/v1/devices/motor-1/desired", json={"collect": None}, headers=ADMIN)
    late = sample_batch(2, 2, label="worn", dataset="bearings")
    other = sample_batch(2, label="normal", dataset="bearings")

    accepted = await client.post(
        "/api/v1/devices/motor-1/samples", content=late.model_dump_json(), headers=device.auth
    )
    refused = await client.post(
        "/api/v1/devices/motor-1/samples", content=other.model_dump_json(), headers=device.auth
    )

    assert accepted.json()["accepted"] == 2
    assert refused.status_code == 403
    assert "asks for no collection" in refused.json()["detail"]
    assert count(hub, SampleRow) == 2
