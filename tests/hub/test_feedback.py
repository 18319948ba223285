"""Ground truth posted back, and accuracy per device and model: live on labelled windows,
estimated from calibrated confidences."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edgestack.bundle import Bundle, Calibration
from edgestack.hub.context import HubContext
from edgestack.hub.store.tables import FeedbackRow
from edgestack.protocol import (
    AccuracyView,
    AlertView,
    FeedbackAck,
    MonitorReport,
    ReportedState,
    TelemetryBatch,
)

from .factories import ADMIN, HARDWARE, SPEC, Device, Enrol, count, telemetry_batch

pytestmark = pytest.mark.anyio

T0 = datetime(2025, 1, 1, tzinfo=UTC)  # telemetry_batch(seq) covers T0 + 5 (seq - 1) .. 5 seq s
RAW = {**ADMIN, "Content-Type": "application/octet-stream"}
# Right half the time below 0.5 confidence, then 60 % .. 100 % in the upper five bins.
CALIBRATION = Calibration(accuracy=[0.5] * 5 + [0.6, 0.7, 0.8, 0.9, 1.0], rows=[10] * 10)


def confident(bin_: int, windows: int = 10) -> MonitorReport:
    """`windows` windows, all with a top-class probability in bin `bin_`."""
    return MonitorReport(confidence=[windows if i == bin_ else 0 for i in range(10)])


async def register(client: httpx.AsyncClient, calibration: Calibration | None = CALIBRATION) -> str:
    bundle = Bundle.create(
        name="motor", labels=["normal", "worn"], input=SPEC, model=b"m", calibration=calibration
    )
    response = await client.post("/api/v1/models", content=bundle.pack(), headers=RAW)
    assert response.status_code == 201, response.text
    digest: str = response.json()["digest"]
    return digest


async def send(client: httpx.AsyncClient, device: Device, *batches: TelemetryBatch) -> None:
    for batch in batches:
        url = f"/api/v1/devices/{device.device_id}/telemetry"
        response = await client.post(url, content=batch.model_dump_json(), headers=device.auth)
        assert response.status_code == 200, response.text


def span(start_s: float, end_s: float, label: str, device_id: str = "motor-1") -> dict[str, str]:
    return {
        "device_id": device_id,
        "start": (T0 + timedelta(seconds=start_s)).isoformat(),
        "end": (T0 + timedelta(seconds=end_s)).isoformat(),
        "label": label,
    }


async def post(client: httpx.AsyncClient, *spans: dict[str, str]) -> httpx.Response:
    body = {"batch_id": str(uuid.uuid4()), "spans": list(spans)}
    return await client.post("/api/v1/feedback", json=body, headers=ADMIN)


async def accuracy(client: httpx.AsyncClient, **params: str) -> list[AccuracyView]:
    response = await client.get("/api/v1/accuracy", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    return [AccuracyView.model_validate(row) for row in response.json()]


async def test_live_accuracy_counts_the_batches_wholly_inside_a_span(
    client: httpx.AsyncClient, device: Device
) -> None:
    digest = await register(client)
    batches = [
        telemetry_batch(1, bundle_digest=digest, predictions={"normal": 9, "worn": 1}),
        telemetry_batch(2, bundle_digest=digest, predictions={"normal": 4, "worn": 6}),
        telemetry_batch(3, bundle_digest=digest, predictions={"normal": 10}),  # 10..15: half in
        telemetry_batch(4, bundle_digest=digest, predictions={"normal": 2, "worn": 8}),
    ]
    await send(client, device, *batches)

    posted = await post(client, span(0, 12, "normal"), span(15, 20, "worn"))
    [row] = await accuracy(client)

    assert posted.status_code == 200, posted.text
    assert FeedbackAck.model_validate_json(posted.content).accepted == 2
    assert (row.device_id, row.bundle_digest, row.model, row.version) == (
        "motor-1",
        digest,
        "motor",
        1,
    )
    assert row.labelled_windows == 30
    assert row.accuracy == pytest.approx((9 + 4 + 8) / 30)


async def test_the_newest_span_decides_where_spans_overlap(
    client: httpx.AsyncClient, device: Device
) -> None:
    digest = await register(client)
    await send(client, device, telemetry_batch(1, bundle_digest=digest))  # 9 normal, 1 worn
    await post(client, span(0, 5, "normal"))

    await post(client, span(-5, 10, "worn"))
    [row] = await accuracy(client)

    assert (row.accuracy, row.labelled_windows) == (0.1, 10)


async def test_estimated_accuracy_weighs_each_confidence_bin_by_its_calibration(
    client: httpx.AsyncClient, device: Device
) -> None:
    digest = await register(client)
    batches = [
        telemetry_batch(1, bundle_digest=digest, monitoring=confident(9)),  # 10 x 1.0
        telemetry_batch(2, bundle_digest=digest, monitoring=confident(5, 30)),  # 30 x 0.6
        telemetry_batch(3, bundle_digest=digest),  # no monitoring: not estimated
    ]

    await send(client, device, *batches)
    [row] = await accuracy(client)

    assert row.estimated_windows == 40
    assert row.estimated_accuracy == pytest.approx((10 * 1.0 + 30 * 0.6) / 40)
    assert (row.accuracy, row.labelled_windows) == (None, 0)


async def test_a_model_without_calibration_or_registration_has_no_estimate(
    client: httpx.AsyncClient, device: Device
) -> None:
    plain = await register(client, calibration=None)
    unknown = "0" * 64

    await send(
        client,
        device,
        telemetry_batch(1, bundle_digest=plain, monitoring=confident(9)),
        telemetry_batch(2, bundle_digest=unknown, monitoring=confident(9)),
    )
    rows = {row.bundle_digest: row for row in await accuracy(client)}

    assert rows[plain].estimated_accuracy is None and rows[plain].model == "motor"
    assert rows[unknown].estimated_accuracy is None and rows[unknown].model is None


async def test_accuracy_filters_by_device_and_model(
    client: httpx.AsyncClient, enrol: Enrol
) -> None:
    digest = await register(client)
    one, two = await enrol("motor-1"), await enrol("motor-2")
    await send(client, one, telemetry_batch(1, bundle_digest=digest))
    await send(client, two, telemetry_batch(1, bundle_digest=digest))

    mine = await accuracy(client, device="motor-2")
    other_model = await accuracy(client, model="pump")
    this_model = await accuracy(client, model="motor")

    assert [row.device_id for row in mine] == ["motor-2"]
    assert other_model == []
    assert [row.device_id for row in this_model] == ["motor-1", "motor-2"]


async def test_feedback_for_an_unknown_device_or_a_backward_span_is_refused(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    unknown = await post(client, span(0, 5, "normal"), span(0, 5, "normal", "pump-9"))
    backward = await post(client, span(5, 5, "normal"))

    assert unknown.status_code == backward.status_code == 422
    assert "spans[1].device_id" in unknown.json()["detail"]
    assert "pump-9" in unknown.json()["detail"]
    assert "end" in backward.json()["detail"]
    assert "after start" in backward.json()["detail"]
    assert count(hub, FeedbackRow) == 0


async def test_feedback_sent_twice_is_stored_once(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    body = {"batch_id": str(uuid.uuid4()), "spans": [span(0, 5, "normal")]}

    first = await client.post("/api/v1/feedback", json=body, headers=ADMIN)
    again = await client.post("/api/v1/feedback", json=body, headers=ADMIN)

    assert FeedbackAck.model_validate_json(first.content).duplicate is False
    assert FeedbackAck.model_validate_json(again.content).duplicate is True
    assert count(hub, FeedbackRow) == 1


async def test_a_label_the_running_model_does_not_know_is_accepted_with_a_note(
    client: httpx.AsyncClient, device: Device
) -> None:
    digest = await register(client)
    reported = ReportedState(
        desired_version=0,
        status="running",
        hardware=HARDWARE,
        bundle={"name": "motor", "version": 1, "digest": digest},
    )
    await client.put(
        "/api/v1/devices/motor-1/reported", content=reported.model_dump_json(), headers=device.auth
    )

    response = await post(client, span(0, 5, "normal"), span(5, 10, "broken"))

    ack = FeedbackAck.model_validate_json(response.content)
    assert ack.accepted == 2
    [note] = ack.notes
    assert note.startswith("spans[1].label: 'broken' is not a label of motor v1")


async def test_feedback_needs_the_admin_token(client: httpx.AsyncClient, device: Device) -> None:
    body = {"batch_id": str(uuid.uuid4()), "spans": [span(0, 5, "normal")]}

    posted = await client.post("/api/v1/feedback", json=body, headers=device.auth)
    listed = await client.get("/api/v1/accuracy", headers=device.auth)

    assert (posted.status_code, listed.status_code) == (401, 401)


async def test_low_live_and_estimated_accuracy_raise_alerts(
    client: httpx.AsyncClient, device: Device
) -> None:
    digest = await register(client)
    rules = [
        {"signal": "accuracy", "raise_at": 0.8, "clear_at": 0.9, "for_batches": 1},
        {"signal": "estimated_accuracy", "raise_at": 0.8, "clear_at": 0.9, "for_batches": 1},
    ]
    await client.put("/api/v1/alerts/rules", json={"rules": rules}, headers=ADMIN)
    await post(client, span(0, 100, "worn"))  # labels ahead of the telemetry they cover

    await send(
        client,
        device,
        telemetry_batch(1, bundle_digest=digest, monitoring=confident(9), bad_input={}),
        telemetry_batch(2, bundle_digest=digest, monitoring=confident(3), bad_input={}),
    )
    response = await client.get("/api/v1/alerts", headers=ADMIN)

    raised = [AlertView.model_validate(a) for a in response.json()]
    assert [(a.signal, a.first_value) for a in raised] == [
        ("accuracy", 0.1),  # 1 of 10 predicted worn
        ("estimated_accuracy", 0.5),  # the second batch: all in a bin right half the time
    ]
    assert {a.model for a in raised} == {"motor"}


async def test_metrics_show_open_alerts_and_accuracy(
    client: httpx.AsyncClient, device: Device
) -> None:
    digest = await register(client)
    rule = {"signal": "accuracy", "raise_at": 0.95, "clear_at": 0.99, "for_batches": 1}
    await client.put("/api/v1/alerts/rules", json={"rules": [rule]}, headers=ADMIN)
    await post(client, span(0, 5, "normal"))
    batch = telemetry_batch(1, bundle_digest=digest, monitoring=confident(7))  # 9 of 10 normal

    await send(client, device, batch)
    response = await client.get("/metrics", headers=ADMIN)

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    key = (("device", "motor-1"), ("model", "motor"), ("version", "1"))
    assert samples[("edgestack_accuracy", key)] == 0.9
    assert samples[("edgestack_estimated_accuracy", key)] == pytest.approx(0.8)
    assert samples[("edgestack_alerts_open", (("device", "motor-1"), ("signal", "accuracy")))] == 1
    assert [name for name, _ in samples].count("edgestack_alerts_open") == 1


async def test_a_feedback_batch_is_bounded(client: httpx.AsyncClient, device: Device) -> None:
    body = {"batch_id": str(uuid.uuid4()), "spans": [span(0, 5, "normal")] * 10_001}

    response = await client.post("/api/v1/feedback", json=body, headers=ADMIN)

    assert response.status_code == 422
    assert "spans" in response.json()["detail"]
