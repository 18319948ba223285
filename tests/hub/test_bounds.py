"""What a prober sent: every number, string and map a device sends is bounded, and so are
query and path parameters; over a bound is 422 naming the field, never 200 or 500."""

import json

import httpx
import pytest

from edgestack.hub.context import HubContext
from edgestack.hub.store.tables import EventRow, SampleRow, TelemetryRow
from edgestack.protocol import DeviceView

from .factories import (
    ADMIN,
    HARDWARE,
    Device,
    collecting,
    count,
    event_batch,
    sample_batch,
    telemetry_batch,
)

pytestmark = pytest.mark.anyio


def _telemetry(**changes: object) -> str:
    body = telemetry_batch(1).model_dump(mode="json")
    return json.dumps({**body, **changes})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(_telemetry(windows=1e30), "body.windows", id="windows 1e30"),
        pytest.param(_telemetry(windows=2**63 + 5), "body.windows", id="windows 2^63+5"),
        pytest.param(_telemetry(seq=2**63), "body.seq", id="seq 2^63"),
        pytest.param(_telemetry(raw_bytes=-1), "body.raw_bytes", id="negative bytes"),
        pytest.param(
            _telemetry(predictions={"x" * 10_000: 1}), "body.predictions", id="10,000-char label"
        ),
        pytest.param(
            _telemetry(bad_input={f"r{i}": 1 for i in range(50_000)}),
            "body.bad_input",
            id="50,000 bad_input keys",
        ),
        pytest.param(_telemetry(latency_ms_p50=1e300), "body.latency_ms_p50", id="latency"),
        pytest.param(_telemetry(start="2025-01-01T00:00:00"), "body.start", id="naive time"),
        pytest.param(
            _telemetry(start="0001-01-01T00:00:00+05:00"), "body.start", id="year 1 with a zone"
        ),
    ],
)
async def test_telemetry_over_a_bound_is_422_naming_the_field(
    client: httpx.AsyncClient, hub: HubContext, device: Device, body: str, field: str
) -> None:
    response = await client.post(
        "/api/v1/devices/motor-1/telemetry", content=body, headers=device.auth
    )

    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(field)
    assert count(hub, TelemetryRow) == 0


async def test_an_event_with_a_long_label_or_a_kind_of_the_hubs_is_refused(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    long = event_batch(1).model_dump(mode="json")
    long["events"][0]["label"] = "x" * 10_000
    forged = event_batch(1).model_dump(mode="json")
    forged["events"][0]["kind"] = "device_reenrolled"
    before = count(hub, EventRow)

    too_long = await client.post("/api/v1/devices/motor-1/events", json=long, headers=device.auth)
    hub_kind = await client.post("/api/v1/devices/motor-1/events", json=forged, headers=device.auth)

    assert too_long.status_code == 422
    assert too_long.json()["detail"].startswith("body.events[0].label")
    assert hub_kind.status_code == 403
    assert hub_kind.json()["detail"].startswith("body.events[0].kind: 'device_reenrolled'")
    assert count(hub, EventRow) == before


@pytest.mark.parametrize("field", ["window", "hop"])
async def test_a_sample_spec_whose_counts_do_not_fit_int64_is_refused(
    client: httpx.AsyncClient, hub: HubContext, device: Device, field: str
) -> None:
    await collecting(client, "motor-1")
    body = sample_batch(2).model_dump(mode="json")
    body["spec"][field] = 2**70

    response = await client.post("/api/v1/devices/motor-1/samples", json=body, headers=device.auth)

    assert response.status_code == 422
    assert response.json()["detail"].startswith("body.spec")
    assert f"{field} is a count of samples and must fit int64" in response.json()["detail"]
    assert count(hub, SampleRow) == 0


async def test_an_infinite_rate_reported_is_refused_and_the_device_stays_readable(
    client: httpx.AsyncClient, device: Device
) -> None:
    state = {
        "desired_version": 0,
        "status": "idle",
        "hardware": HARDWARE.model_dump(mode="json"),
        "feeds": {"sensors": ["vib_x"], "rate_hz": 1.0, "extractors": ["time_stats"]},
    }
    text = json.dumps(state).replace('"rate_hz": 1.0', '"rate_hz": 1e999')

    response = await client.put(
        "/api/v1/devices/motor-1/reported",
        content=text,
        headers={**device.auth, "Content-Type": "application/json"},
    )
    view = await client.get("/api/v1/devices/motor-1", headers=ADMIN)

    assert response.status_code == 422
    assert response.json()["detail"].startswith("body.feeds.rate_hz")
    DeviceView.model_validate_json(view.content)


@pytest.mark.parametrize("value", [1e30, float("inf"), 3.5e38])
async def test_features_a_float32_column_cannot_hold_are_refused(
    client: httpx.AsyncClient, hub: HubContext, device: Device, value: float
) -> None:
    await collecting(client, "motor-1")
    body = sample_batch(2).model_dump(mode="json")
    body["samples"][0]["features"][1] = value
    text = json.dumps(body).replace("Infinity", "1e999")

    response = await client.post(
        "/api/v1/devices/motor-1/samples", content=text, headers=device.auth
    )

    if value < 3.4e38:
        assert response.status_code == 200
    else:
        assert response.status_code == 422
        assert response.json()["detail"].startswith("body.samples[0].features[1]")
        assert count(hub, SampleRow) == 0


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/events?after_id=1e20", "query.after_id"),
        (f"/api/v1/events?after_id={2**63}", "query.after_id"),
        ("/api/v1/datasets/default/versions/12345678901234567890/parquet", "path.version"),
        (f"/api/v1/samples?label={'x' * 1000}", "query.label"),
        (f"/api/v1/devices/motor-1/desired?after={2**64}", "query.after"),
    ],
)
async def test_query_and_path_parameters_over_a_bound_are_422(
    client: httpx.AsyncClient, device: Device, path: str, field: str
) -> None:
    headers = device.auth if "/desired" in path else ADMIN

    response = await client.get(path, headers=headers)

    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(field)
