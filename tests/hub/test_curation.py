"""Relabelling and removing samples of a dataset: each change a new version, the older ones
as they were."""

import io
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pyarrow.parquet as pq
import pytest

from edgestack.bundle import InputSpec
from edgestack.hub.context import HubContext
from edgestack.hub.store.tables import DatasetVersionRow, SampleRow
from edgestack.protocol import Curated, DataSample, SampleImport

from .factories import ADMIN, SPEC, count

pytestmark = pytest.mark.anyio

START = datetime(2025, 1, 1, tzinfo=UTC)
OTHER_SPEC = SPEC.model_copy(update={"rate_hz": 800.0})


async def _import(
    client: httpx.AsyncClient,
    device: str,
    labels: list[str],
    *,
    offset_s: int = 0,
    spec: InputSpec = SPEC,
) -> None:
    """Samples from `device`, one a second from `START` + `offset_s`, labelled in turn."""
    samples = [
        DataSample(at=START + timedelta(seconds=offset_s + i), label=label, features=[i, i])
        for i, label in enumerate(labels)
    ]
    body = SampleImport(batch_id=uuid.uuid4(), device_id=device, spec=spec, samples=samples)
    response = await client.post(
        "/api/v1/datasets/motors/samples", content=body.model_dump_json(), headers=ADMIN
    )
    assert response.status_code == 200, response.text


async def _rows(client: httpx.AsyncClient, version: int) -> list[tuple[str, str]]:
    """(device, label) of each sample of a version, in order."""
    response = await client.get(
        f"/api/v1/datasets/motors/versions/{version}/parquet", headers=ADMIN
    )
    assert response.status_code == 200, response.text
    table = pq.read_table(io.BytesIO(response.content))
    return list(zip(table["device"].to_pylist(), table["label"].to_pylist(), strict=True))


async def _ids(client: httpx.AsyncClient, device: str) -> list[int]:
    response = await client.get("/api/v1/samples", params={"device": device}, headers=ADMIN)
    return [s["id"] for s in response.json()["samples"]]


async def _curate(client: httpx.AsyncClient, action: str, body: object) -> Curated:
    response = await client.post(f"/api/v1/datasets/motors/{action}", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return Curated.model_validate_json(response.content)


async def test_a_relabelling_freezes_a_new_version_and_the_older_one_keeps_its_labels(
    client: httpx.AsyncClient,
) -> None:
    await _import(client, "m1", ["normal", "normal", "normal", "worn"])
    await _import(client, "m2", ["normal", "normal"])
    await client.post("/api/v1/datasets/motors/versions", headers=ADMIN)
    # m1's first three seconds were worn already: device, time range and label together.
    body = {
        "device": "m1",
        "since": START.isoformat(),
        "until": (START + timedelta(seconds=2)).isoformat(),
        "label": "normal",
        "to": "worn",
    }

    relabelled = await _curate(client, "relabel", body)

    assert relabelled.changed == 2
    assert relabelled.version.version == 2
    assert relabelled.version.counts.labels == {"normal": 3, "worn": 3}
    assert await _rows(client, 2) == [
        ("m1", "worn"),
        ("m1", "worn"),
        ("m1", "normal"),
        ("m1", "worn"),
        ("m2", "normal"),
        ("m2", "normal"),
    ]
    assert await _rows(client, 1) == [
        ("m1", "normal"),
        ("m1", "normal"),
        ("m1", "normal"),
        ("m1", "worn"),
        ("m2", "normal"),
        ("m2", "normal"),
    ]


async def test_a_removal_by_id_freezes_a_version_without_them_and_the_older_keeps_them(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    await _import(client, "m1", ["normal", "worn", "worn"])
    await _import(client, "m2", ["worn"], offset_s=10)
    first, second, _ = await _ids(client, "m1")
    await client.post("/api/v1/datasets/motors/versions", headers=ADMIN)

    removed = await _curate(client, "removal", {"ids": [first, second]})
    by_device = await _curate(client, "removal", {"device": "m2"})

    assert (removed.changed, removed.version.version, removed.version.counts.total) == (2, 2, 2)
    assert (by_device.changed, by_device.version.version) == (1, 3)
    assert await _rows(client, 3) == [("m1", "worn")]
    assert await _rows(client, 2) == [("m1", "worn"), ("m2", "worn")]
    assert len(await _rows(client, 1)) == 4
    assert count(hub, SampleRow) == 1


async def test_the_ids_of_removed_samples_are_never_given_again(
    client: httpx.AsyncClient,
) -> None:
    await _import(client, "m1", ["normal", "worn"])
    await _import(client, "bad", ["worn", "worn"], offset_s=10)
    removed = await _ids(client, "bad")
    await _curate(client, "removal", {"device": "bad"})

    await _import(client, "m2", ["normal", "worn"], offset_s=20)

    assert min(await _ids(client, "m2")) > max(removed)
    stale = await client.post(
        "/api/v1/datasets/motors/removal", json={"ids": removed}, headers=ADMIN
    )
    assert stale.status_code == 422, stale.text


async def test_the_samples_of_one_dataset_are_listed_with_the_ids_a_change_selects(
    client: httpx.AsyncClient,
) -> None:
    long_label = "Worn bearing, outer race, " + "x" * 30  # longer than a slug may be
    await _import(client, "m1", ["normal", long_label])
    body = SampleImport(
        batch_id=uuid.uuid4(),
        device_id="m1",
        spec=SPEC,
        samples=[DataSample(at=START + timedelta(days=1), label="normal", features=[0, 0])],
    )
    await client.post(
        "/api/v1/datasets/pumps/samples", content=body.model_dump_json(), headers=ADMIN
    )

    listed = await client.get("/api/v1/samples", params={"dataset": "motors"}, headers=ADMIN)
    labelled = await client.get(
        "/api/v1/samples", params={"dataset": "motors", "label": long_label}, headers=ADMIN
    )

    assert listed.status_code == labelled.status_code == 200, listed.text + labelled.text
    motors = [s["id"] for s in listed.json()["samples"]]
    assert len(motors) == 2
    (worn,) = [s["id"] for s in labelled.json()["samples"]]
    removed = await _curate(client, "removal", {"ids": [worn]})
    assert removed.changed == 1


@pytest.mark.parametrize(
    ("action", "body", "status", "detail"),
    [
        ("relabel", {"to": "worn"}, 422, "body: select the samples with at least one of device"),
        ("removal", {}, 422, "body: select the samples with at least one of device"),
        ("relabel", {"label": "broken", "to": "worn"}, 422, "no samples of dataset 'motors'"),
        ("relabel", {"label": "worn", "to": "worn"}, 422, "not labelled 'worn' match"),
        ("removal", {"device": "m9"}, 422, "match the selection (device m9); nothing was changed"),
        ("removal", {"ids": [999]}, 422, "body.ids: 1 are no samples of dataset 'motors' (999)"),
        (
            "removal",
            {"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"},
            422,
            "body.until: 2025-01-01T00:00:00+00:00 is not after since",
        ),
        ("removal", {"device": "m1"}, 409, "are of 2 input specs"),
        ("removal", {"device": "m1", "spec": SPEC.fingerprint()}, 409, "would leave dataset"),
        ("relabel", {"device": "m1"}, 422, "body.to: Field required"),
    ],
)
async def test_a_selection_that_takes_nothing_or_too_much_changes_nothing(
    client: httpx.AsyncClient, hub: HubContext, action: str, body: object, status: int, detail: str
) -> None:
    await _import(client, "m1", ["normal", "worn"])
    await _import(client, "m1", ["worn"], offset_s=10, spec=OTHER_SPEC)

    response = await client.post(f"/api/v1/datasets/motors/{action}", json=body, headers=ADMIN)

    assert response.status_code == status, response.text
    assert detail in response.json()["detail"]
    assert count(hub, DatasetVersionRow) == 0
    assert count(hub, SampleRow) == 3


async def test_curating_a_dataset_without_samples_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/datasets/nothing/removal", json={"label": "worn"}, headers=ADMIN
    )

    assert response.status_code == 404
    assert "no dataset 'nothing'" in response.json()["detail"]
