"""/metrics: the fleet in Prometheus' text format, read from the database at each scrape."""

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edgestack.hub.context import HubContext
from edgestack.hub.store import events
from edgestack.protocol import BundleRef, ReportedState

from .factories import ADMIN, HARDWARE, Device, Enrol, event_batch, telemetry_batch

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def _scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def _send(client: httpx.AsyncClient, device: Device, path: str, body: str) -> None:
    url = f"/v1/devices/{device.device_id}/{path}"
    response = await client.request(
        "PUT" if path == "reported" else "POST", url, content=body, headers=device.auth
    )
    assert response.status_code == 200, response.text


async def test_metrics_show_each_device_and_model_after_telemetry_arrives(
    client: httpx.AsyncClient, device: Device, enrol: Enrol
) -> None:
    await enrol("motor-2")
    running = BundleRef(name="motor", version=3, digest="ab" * 32)
    reported = ReportedState(desired_version=0, bundle=running, status="running", hardware=HARDWARE)
    await _send(client, device, "reported", reported.model_dump_json())
    first = telemetry_batch(1, latency_ms_p50=2.5, latency_ms_p95=7.0, mean_confidence=0.8)
    second = telemetry_batch(
        2,
        predictions={"worn": 5},
        latency_ms_p50=3.0,
        latency_ms_p95=9.5,
        failed_chunks=2,
        outbox_dropped=4,
        dead_lettered=1,
    )
    for batch in (second, first):  # out of order: the latest interval is seq 2 still
        await _send(client, device, "telemetry", batch.model_dump_json())
    await _send(client, device, "events", event_batch(3).model_dump_json())

    samples = await _scrape(client)

    motor = {"device": "motor-1", "model": "motor"}
    silent = {"device": "motor-2", "model": ""}
    assert _value(samples, "edgestack_windows_total", **motor) == 20
    assert _value(samples, "edgestack_predictions_total", **motor, label="normal") == 9
    assert _value(samples, "edgestack_predictions_total", **motor, label="worn") == 6
    assert _value(samples, "edgestack_bad_input_total", **motor, reason="nan") == 4
    assert _value(samples, "edgestack_failed_chunks_total", **motor) == 2
    assert _value(samples, "edgestack_outbox_dropped_total", **motor) == 4
    assert _value(samples, "edgestack_dead_lettered_total", **motor) == 1
    assert _value(samples, "edgestack_latency_ms", **motor, quantile="0.5") == 3.0
    assert _value(samples, "edgestack_latency_ms", **motor, quantile="0.95") == 9.5
    assert _value(samples, "edgestack_mean_confidence", **motor) is None
    assert _value(samples, "edgestack_device_status", **motor, status="running") == 1
    assert _value(samples, "edgestack_device_status", **motor, status="silent") == 0
    assert _value(samples, "edgestack_device_status", **silent, status="silent") == 1
    assert _value(samples, "edgestack_windows_total", **silent) == 0
    assert _value(samples, "edgestack_latency_ms", **silent, quantile="0.5") is None
    assert _value(samples, "edgestack_state_version", **motor, side="reported") == 0
    assert (
        _value(samples, "edgestack_bundle_version", **motor, side="reported", bundle="motor") == 3
    )
    age = _value(samples, "edgestack_last_seen_age_seconds", **motor)
    assert age is not None and 0 <= age < 3600
    assert _value(samples, "edgestack_events_total", device="motor-1", kind="alarm_raised") == 3
    assert _value(samples, "edgestack_events_total", device="motor-2", kind="device_enrolled") == 1


async def test_the_hubs_own_events_count_under_no_device(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    with hub.db.writer() as session:
        events.record(session, "store_corrupt", "the hub's own event")
        events.record(session, "store_corrupt", "and another")
        session.commit()

    samples = await _scrape(client)

    assert _value(samples, "edgestack_events_total", device="", kind="store_corrupt") == 2
    assert _value(samples, "edgestack_events_total", device="motor-1", kind="store_corrupt") is None


async def test_metrics_follow_the_desired_state_as_it_changes(
    client: httpx.AsyncClient, device: Device
) -> None:
    before = await _scrape(client)
    response = await client.patch(
        "/v1/devices/motor-1/desired", json={"telemetry_interval_s": 2}, headers=ADMIN
    )
    assert response.status_code == 200, response.text

    after = await _scrape(client)

    labels = {"device": "motor-1", "model": "", "side": "desired"}
    assert _value(before, "edgestack_state_version", **labels) == 0
    assert _value(after, "edgestack_state_version", **labels) == 1


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
async def test_metrics_need_the_admin_token(
    client: httpx.AsyncClient, device: Device, headers: dict[str, str]
) -> None:
    response = await client.get("/metrics", headers=headers)

    assert response.status_code == 401
    assert "motor-1" not in response.text
