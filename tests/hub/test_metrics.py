"""/metrics: the fleet in Prometheus' text format, read from the database at each scrape."""

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edgestack.hub.context import HubContext
from edgestack.hub.store import events
from edgestack.protocol import BundleRef, DeviceView, OffloadReport, ReportedState

from .factories import (
    ADMIN,
    HARDWARE,
    SHIFTED,
    STEADY,
    Device,
    Enrol,
    event_batch,
    monitored_batch,
    registered_with_reference,
    telemetry_batch,
)

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
    url = f"/api/v1/devices/{device.device_id}/{path}"
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


async def test_metrics_show_monitoring_drift_per_feature_and_outbox_depth(
    client: httpx.AsyncClient, device: Device
) -> None:
    digest = await registered_with_reference(client)
    bodies = [monitored_batch(seq, digest, STEADY) for seq in (1, 2)]
    last = monitored_batch(
        3,
        digest,
        SHIFTED,
        p50_ms=1.5,
        p95_ms=4.0,
        p99_ms=9.0,
        throughput=3.5,
        cpu_share=0.25,
        rss_bytes=80_000_000,
        anomaly_max=6.5,
        outbox_pending=12,
    )
    for body in (*bodies, last):
        await _send(client, device, "telemetry", body)

    samples = await _scrape(client)

    key = {"device": "motor-1", "model": ""}
    for quantile, ms in (("0.5", 1.5), ("0.95", 4.0), ("0.99", 9.0)):
        assert _value(samples, "edgestack_call_latency_ms", **key, quantile=quantile) == ms
    assert _value(samples, "edgestack_throughput", **key) == 3.5
    assert _value(samples, "edgestack_cpu_share", **key) == 0.25
    assert _value(samples, "edgestack_rss_bytes", **key) == 80_000_000
    assert _value(samples, "edgestack_anomaly_score", **key) == 6.5
    assert _value(samples, "edgestack_outbox_pending", **key) == 12
    assert _value(samples, "edgestack_drift_windows", **key) == 120
    rms = _value(samples, "edgestack_feature_drift_psi", **key, feature="rms")
    peak = _value(samples, "edgestack_feature_drift_psi", **key, feature="peak")
    assert rms is not None and peak is not None and rms > 0.2 > peak
    assert _value(samples, "edgestack_drift_psi", **key) == rms
    assert _value(samples, "edgestack_drift_ks", **key) == 0.25
    assert _value(samples, "edgestack_changes_total", **key, signal="confidence") == 3


async def test_a_device_without_monitoring_has_no_monitoring_series(
    client: httpx.AsyncClient, device: Device
) -> None:
    await _send(client, device, "telemetry", telemetry_batch(1).model_dump_json())

    samples = await _scrape(client)

    key = {"device": "motor-1", "model": ""}
    assert _value(samples, "edgestack_drift_psi", **key) is None
    assert _value(samples, "edgestack_call_latency_ms", **key, quantile="0.99") is None
    assert _value(samples, "edgestack_drift_windows", **key) == 0
    assert _value(samples, "edgestack_outbox_pending", **key) == 0


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
        "/api/v1/devices/motor-1/desired", json={"telemetry_interval_s": 2}, headers=ADMIN
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


async def test_offloading_is_summed_per_device_and_tier_in_its_totals_and_metrics(
    client: httpx.AsyncClient, device: Device
) -> None:
    reports = [
        OffloadReport(windows=6, answered={"edge": 4}, fallbacks=2, uplink_bytes=1_500),
        None,  # a batch of an interval without a policy adds nothing
        OffloadReport(windows=3, answered={"edge": 1, "cloud": 2}, uplink_bytes=700),
    ]
    for seq, report in enumerate(reports, start=1):
        batch = telemetry_batch(seq, offload=report)
        await _send(client, device, "telemetry", batch.model_dump_json())

    samples = await _scrape(client)
    view = await client.get(f"/api/v1/devices/{device.device_id}", headers=ADMIN)

    totals = DeviceView.model_validate_json(view.content).telemetry
    assert (totals.offloaded, totals.offload_fallbacks, totals.offload_uplink_bytes) == (
        9,
        2,
        2_200,
    )
    assert totals.offload_answered == {"edge": 5, "cloud": 2}
    key = {"device": "motor-1", "model": ""}
    assert _value(samples, "edgestack_offloaded_windows_total", **key) == 9
    assert _value(samples, "edgestack_offload_answered_total", **key, tier="edge") == 5
    assert _value(samples, "edgestack_offload_answered_total", **key, tier="cloud") == 2
    assert _value(samples, "edgestack_offload_fallbacks_total", **key) == 2
    assert _value(samples, "edgestack_offload_uplink_bytes_total", **key) == 2_200
