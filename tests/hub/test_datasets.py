import asyncio
import io
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from edgestack.bundle import InputSpec
from edgestack.dataset import write_dataset
from edgestack.hub.context import HubContext
from edgestack.hub.store import datasets
from edgestack.hub.store.samples import split_of
from edgestack.hub.store.tables import DatasetVersionRow, SampleRow
from edgestack.protocol import (
    DataSample,
    DatasetDetail,
    DatasetSummary,
    DatasetVersion,
    SampleBatch,
    SampleImport,
    slug,
)

from .factories import ADMIN, SPEC, Device, collecting, count, sample_batch, wait_until

pytestmark = pytest.mark.anyio

OTHER_SPEC = SPEC.model_copy(update={"rate_hz": 800.0})


async def _send(client: httpx.AsyncClient, device: Device, batch: SampleBatch) -> None:
    await collecting(client, device.device_id, batch.samples[0].label, batch.dataset)
    response = await client.post(
        f"/api/v1/devices/{device.device_id}/samples",
        content=batch.model_dump_json(),
        headers=device.auth,
    )
    assert response.status_code == 200, response.text


async def _freeze(client: httpx.AsyncClient, name: str, **params: str) -> DatasetVersion:
    response = await client.post(f"/api/v1/datasets/{name}/versions", params=params, headers=ADMIN)
    assert response.status_code == 201, response.text
    return DatasetVersion.model_validate_json(response.content)


async def _detail(client: httpx.AsyncClient, name: str) -> DatasetDetail:
    response = await client.get(f"/api/v1/datasets/{name}", headers=ADMIN)
    assert response.status_code == 200, response.text
    return DatasetDetail.model_validate_json(response.content)


async def _parquet(client: httpx.AsyncClient, name: str, version: int) -> bytes:
    response = await client.get(
        f"/api/v1/datasets/{name}/versions/{version}/parquet", headers=ADMIN
    )
    assert response.status_code == 200, response.text
    return response.content


async def test_samples_go_to_the_dataset_their_batch_names_with_a_fixed_split(
    client: httpx.AsyncClient, device: Device
) -> None:
    batch = sample_batch(*[2] * 60, label="worn", dataset="bearings")
    await _send(client, device, batch)
    await _send(client, device, sample_batch(2, label="normal"))

    listed = await client.get("/api/v1/datasets", headers=ADMIN)
    bearings = await _detail(client, "bearings")

    assert [(d.name, d.counts.total, d.versions, d.latest) for d in _summaries(listed)] == [
        ("bearings", 60, 0, None),
        ("default", 1, 0, None),
    ]
    expected = Counter(split_of("motor-1", s.at) for s in batch.samples)
    assert bearings.counts.splits == dict(sorted(expected.items()))
    assert bearings.counts.labels == {"worn": 60}
    assert bearings.counts.devices == {"motor-1": 60}
    assert bearings.specs == {SPEC.fingerprint(): SPEC}
    assert bearings.versions == []


def test_the_split_is_the_same_every_time_and_about_one_in_five_for_test() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    times = [start + timedelta(milliseconds=250 * i) for i in range(2000)]

    splits = [split_of("motor-1", at) for at in times]
    again = [split_of("motor-1", at.astimezone(datetime.now().astimezone().tzinfo)) for at in times]

    assert splits == again
    assert 0.15 < splits.count("test") / len(splits) < 0.25


async def test_a_frozen_version_does_not_change_when_more_samples_arrive(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    await _send(client, device, sample_batch(2, 2, 2, label="normal"))
    first = await _freeze(client, "default")
    first_file = await _parquet(client, "default", 1)

    await _send(client, device, sample_batch(2, 2, label="worn"))
    second = await _freeze(client, "default")
    detail = await _detail(client, "default")

    assert (first.version, first.counts.total, first.counts.labels) == (1, 3, {"normal": 3})
    assert (second.version, second.counts.total) == (2, 5)
    assert second.counts.labels == {"normal": 3, "worn": 2}
    assert detail.versions == [first, second]
    assert await _parquet(client, "default", 1) == first_file
    assert pq.read_table(io.BytesIO(first_file)).num_rows == 3
    assert pq.read_table(io.BytesIO(await _parquet(client, "default", 2))).num_rows == 5
    assert count(hub, DatasetVersionRow) == 2


async def test_a_version_reads_back_with_pyarrow_and_pandas(
    client: httpx.AsyncClient, device: Device
) -> None:
    batch = sample_batch(2, 2, 2, label="worn", dataset="bearings")
    await _send(client, device, batch)
    await _freeze(client, "bearings")

    data = await _parquet(client, "bearings", 1)
    table = pq.read_table(io.BytesIO(data))
    frame = pd.read_parquet(io.BytesIO(data))

    assert table.column_names == ["device", "at", "label", "split", "spec", "rms", "peak"]
    assert table.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("rms").type == pa.float32()
    assert table.schema.field("label").type == pa.string()
    metadata = table.schema.metadata or {}
    assert InputSpec.model_validate_json(metadata[b"edgestack.spec"]) == SPEC
    assert list(frame.columns) == table.column_names
    assert str(frame["at"].dtype) == "datetime64[us, UTC]"
    assert frame["peak"].dtype == np.float32
    assert frame["at"].tolist() == [s.at for s in batch.samples]
    assert frame[["rms", "peak"]].to_numpy().tolist() == [s.features for s in batch.samples]
    assert set(frame["device"]) == {"motor-1"}
    assert set(frame["spec"]) == {SPEC.fingerprint()}
    assert frame["split"].tolist() == [split_of("motor-1", s.at) for s in batch.samples]


async def test_a_dataset_mixing_specs_is_frozen_one_spec_at_a_time(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    await _send(client, device, sample_batch(2, 2))
    await _send(client, device, sample_batch(2).model_copy(update={"spec": OTHER_SPEC}))

    mixed = await client.post("/api/v1/datasets/default/versions", headers=ADMIN)
    unknown = await client.post(
        "/api/v1/datasets/default/versions", params={"spec": "0" * 16}, headers=ADMIN
    )
    chosen = await _freeze(client, "default", spec=OTHER_SPEC.fingerprint())

    assert mixed.status_code == 409
    assert SPEC.fingerprint() in mixed.json()["detail"]
    assert "?spec=<fingerprint>" in mixed.json()["detail"]
    assert unknown.status_code == 422
    assert unknown.json()["detail"].startswith("query.spec: dataset 'default' has no samples")
    assert (chosen.version, chosen.spec, chosen.counts.total) == (1, OTHER_SPEC.fingerprint(), 1)
    assert count(hub, DatasetVersionRow) == 1


@pytest.mark.parametrize(
    ("method", "path", "status", "detail"),
    [
        (
            "GET",
            "/api/v1/datasets/Bad%09",
            422,
            "path.name: Value error, holds a control character",
        ),
        ("GET", "/api/v1/datasets/nothing", 404, "no dataset 'nothing': it holds no samples"),
        ("POST", "/api/v1/datasets/nothing/versions", 404, "no dataset 'nothing'"),
        ("GET", "/api/v1/datasets/default/versions/0/parquet", 422, "path.version:"),
        ("GET", "/api/v1/datasets/default/versions/x/parquet", 422, "path.version:"),
        (
            "GET",
            "/api/v1/datasets/default/versions/9/parquet",
            404,
            "has no version 9; its versions: 1",
        ),
        ("GET", "/api/v1/datasets/other/versions/1/parquet", 404, "no versions yet; freeze one"),
        ("GET", "/api/v1/datasets/nothing/versions/1/parquet", 404, "no dataset 'nothing'"),
    ],
)
async def test_bad_names_and_versions_are_refused_naming_the_problem(
    client: httpx.AsyncClient, device: Device, method: str, path: str, status: int, detail: str
) -> None:
    await _send(client, device, sample_batch(2))
    await _send(client, device, sample_batch(2, dataset="other"))
    await _freeze(client, "default")

    response = await client.request(method, path, headers=ADMIN)

    assert response.status_code == status
    assert detail in response.json()["detail"]


async def test_a_batch_naming_a_bad_dataset_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    body = sample_batch(2).model_dump(mode="json") | {"dataset": "no/slashes"}

    response = await client.post("/api/v1/devices/motor-1/samples", json=body, headers=device.auth)

    assert response.status_code == 422
    assert response.json()["detail"].startswith(
        "body.dataset: Value error, is . or .. or holds a slash"
    )
    assert count(hub, SampleRow) == 0


async def test_imported_samples_join_a_dataset_once_without_an_enrolled_device(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    rows = sample_batch(2, 2, label="worn").samples
    body = SampleImport(batch_id=uuid.uuid4(), spec=SPEC, samples=rows).model_dump_json()

    first = await client.post("/api/v1/datasets/bench/samples", content=body, headers=ADMIN)
    again = await client.post("/api/v1/datasets/bench/samples", content=body, headers=ADMIN)
    detail = await _detail(client, "bench")

    assert (first.json()["accepted"], first.json()["duplicate"]) == (2, False)
    assert (again.json()["accepted"], again.json()["duplicate"]) == (0, True)
    assert detail.counts.devices == {"import": 2}
    assert detail.counts.labels == {"worn": 2}


async def test_an_import_with_the_wrong_feature_count_stores_nothing(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    rows = sample_batch(2, 3).samples
    body = SampleImport(batch_id=uuid.uuid4(), spec=SPEC, samples=rows).model_dump_json()

    response = await client.post("/api/v1/datasets/bench/samples", content=body, headers=ADMIN)

    assert response.status_code == 422
    assert response.json()["detail"].startswith("body.samples[1].features: has 3 values")
    assert count(hub, SampleRow) == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/datasets"),
        ("GET", "/api/v1/datasets/default"),
        ("POST", "/api/v1/datasets/default/versions"),
        ("GET", "/api/v1/datasets/default/versions/1/parquet"),
        ("POST", "/api/v1/datasets/default/samples"),
    ],
)
async def test_datasets_need_the_admin_token(
    client: httpx.AsyncClient, device: Device, method: str, path: str
) -> None:
    response = await client.request(method, path, headers=device.auth)

    assert response.status_code == 401
    assert "role or above" in response.json()["detail"]


def _summaries(response: httpx.Response) -> list[DatasetSummary]:
    assert response.status_code == 200, response.text
    return [DatasetSummary.model_validate(item) for item in response.json()]


async def test_samples_arrive_while_a_version_is_written(
    client: httpx.AsyncClient, device: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _send(client, device, sample_batch(2, 2, label="normal"))
    writing, ingested = threading.Event(), threading.Event()

    def slow_write(*args: Any) -> None:
        writing.set()
        # Stands for a large file: the freeze goes on only once a sample got in meanwhile.
        ingested.wait(timeout=30)
        write_dataset(*args)

    monkeypatch.setattr(datasets, "write_dataset", slow_write)
    freezing = asyncio.create_task(_freeze(client, "default"))
    await wait_until(writing.is_set, timeout_s=30)
    await _send(client, device, sample_batch(2, label="worn"))
    ingested.set()
    first = await freezing
    monkeypatch.undo()
    second = await _freeze(client, "default")

    assert not freezing.cancelled()
    assert (first.version, first.counts.labels) == (1, {"normal": 2})
    assert (second.version, second.counts.labels) == (2, {"normal": 2, "worn": 1})


async def test_imported_samples_keep_their_split_label_and_dataset_name_as_written(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    # Every sample named test: the hash would put about 80 in a hundred in train.
    rows = [
        DataSample(at=at + timedelta(seconds=i), label="Worn Bearing", features=[1.0, 2.0])
        for i in range(20)
    ]
    given = [row.model_copy(update={"split": "test"}) for row in rows[:10]]
    body = SampleImport(batch_id=uuid.uuid4(), spec=SPEC, samples=[*given, *rows[10:]])

    response = await client.post(
        "/api/v1/datasets/Arrow Head/samples", content=body.model_dump_json(), headers=ADMIN
    )
    version = await _freeze(client, "Arrow Head")
    # A dataset named as the first one's folder would be, were it named by its slug alone.
    twin = SampleImport(batch_id=uuid.uuid4(), spec=SPEC, samples=[rows[0]])
    await client.post(
        f"/api/v1/datasets/{slug('Arrow Head')}/samples",
        content=twin.model_dump_json(),
        headers=ADMIN,
    )
    await _freeze(client, slug("Arrow Head"))
    table = pq.read_table(io.BytesIO(await _parquet(client, "Arrow Head", version.version)))

    assert response.status_code == 200, response.text
    assert table.num_rows == 20
    hashed = Counter(split_of("import", row.at) for row in rows[10:])
    assert version.counts.splits == {"test": 10 + hashed["test"], "train": hashed["train"]}
    assert table.column("split").to_pylist()[:10] == ["test"] * 10
    assert version.counts.labels == {"Worn Bearing": 20}
    (file,) = hub.settings.data_dir.glob("datasets/_named/*/v1.parquet")
    assert file.parent.name == slug("Arrow Head")


async def test_a_device_may_not_choose_the_split_of_its_samples(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    batch = sample_batch(2)
    chosen = batch.model_copy(
        update={"samples": [s.model_copy(update={"split": "test"}) for s in batch.samples]}
    )
    await collecting(client, device.device_id, "normal", "default")

    response = await client.post(
        f"/api/v1/devices/{device.device_id}/samples",
        content=chosen.model_dump_json(),
        headers=device.auth,
    )

    assert response.status_code == 422
    assert response.json()["detail"].startswith("body.samples[0].split: a device's samples")
    assert count(hub, SampleRow) == 0


async def test_datasets_named_in_any_script_page_by_name(client: httpx.AsyncClient) -> None:
    names = ["Köln", "東京 2", "東京 1"]
    for name in names:
        body = SampleImport(batch_id=uuid.uuid4(), spec=SPEC, samples=sample_batch(2).samples)
        await client.post(
            f"/api/v1/datasets/{name}/samples", content=body.model_dump_json(), headers=ADMIN
        )

    first = await client.get("/api/v1/datasets", params={"limit": 2}, headers=ADMIN)
    second = await client.get(first.links["next"]["url"], headers=ADMIN)

    assert [s.name for s in _summaries(first) + _summaries(second)] == sorted(names)
    assert first.headers["Edgestack-Next-Cursor"] == "%E6%9D%B1%E4%BA%AC%201"
