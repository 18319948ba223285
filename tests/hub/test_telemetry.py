import gzip

import httpx
import pytest

from edgestack.hub.context import HubContext
from edgestack.hub.store.tables import DeviceRow, TelemetryRow
from edgestack.hub.store.telemetry import DRIFT_WINDOWS
from edgestack.protocol import BadExample, IngestAck, TelemetryTotals, TelemetryView

from .factories import (
    ADMIN,
    SHIFTED,
    STEADY,
    Device,
    Enrol,
    count,
    monitored_batch,
    registered_with_reference,
    telemetry_batch,
)

pytestmark = pytest.mark.anyio

URL = "/api/v1/devices/motor-1/telemetry"


async def _totals(client: httpx.AsyncClient) -> TelemetryTotals:
    view = await client.get("/api/v1/devices/motor-1", headers=ADMIN)
    return TelemetryTotals.model_validate(view.json()["telemetry"])


async def test_batches_add_up_in_the_totals(client: httpx.AsyncClient, device: Device) -> None:
    first = telemetry_batch(1)
    second = telemetry_batch(2, predictions={"worn": 5}, uplink_bytes=100)

    acks = [
        await client.post(URL, content=b.model_dump_json(), headers=device.auth)
        for b in (first, second)
    ]

    assert [a.status_code for a in acks] == [200, 200]
    assert IngestAck.model_validate_json(acks[0].content) == IngestAck(
        batch_id=first.batch_id, accepted=1, duplicate=False
    )
    assert await _totals(client) == TelemetryTotals(
        batches=2,
        last_seq=2,
        windows=20,
        latest_predictions={"worn": 5},
        predictions={"normal": 9, "worn": 6},
        bad_input={"nan": 4},
        bad_examples=[BadExample(reason="nan", example="accel_x")] * 2,
        raw_bytes=80_000,
        uplink_bytes=1_000,
    )


async def test_a_devices_batches_are_listed_a_page_at_a_time(
    client: httpx.AsyncClient, enrol: Enrol
) -> None:
    motor = await enrol("motor-1")
    other = await enrol("motor-2")
    sent = [telemetry_batch(seq, mean_confidence=seq / 10) for seq in (1, 2, 3)]
    for batch in sent:
        await client.post(URL, content=batch.model_dump_json(), headers=motor.auth)
    await client.post(
        "/api/v1/devices/motor-2/telemetry",
        content=telemetry_batch(1).model_dump_json(),
        headers=other.auth,
    )

    first = await client.get(URL, params={"limit": 2}, headers=ADMIN)
    views = [TelemetryView.model_validate(v) for v in first.json()]
    rest = await client.get(URL, params={"after_id": views[-1].id}, headers=ADMIN)
    newest = await client.get(URL, params={"order": "newest", "limit": 1}, headers=ADMIN)
    unknown = await client.get("/api/v1/devices/motor-9/telemetry", headers=ADMIN)
    as_device = await client.get(URL, headers=motor.auth)

    assert [v.batch for v in views] == sent[:2]
    assert {v.device_id for v in views} == {"motor-1"}
    assert [v["batch"]["seq"] for v in rest.json()] == [3]
    assert [v["batch"]["mean_confidence"] for v in newest.json()] == [0.3]
    assert unknown.status_code == 404 and "motor-9" in unknown.json()["detail"]
    assert as_device.status_code == 401


async def test_a_batch_sent_twice_is_stored_once(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    batch = telemetry_batch(1)
    await client.post(URL, content=batch.model_dump_json(), headers=device.auth)
    before = await client.get("/api/v1/devices/motor-1", headers=ADMIN)

    again = await client.post(URL, content=batch.model_dump_json(), headers=device.auth)

    assert again.status_code == 200
    assert again.json() == {"batch_id": str(batch.batch_id), "accepted": 0, "duplicate": True}
    assert count(hub, TelemetryRow) == 1
    assert (await client.get("/api/v1/devices/motor-1", headers=ADMIN)).json() == before.json()


async def test_a_gzip_body_is_accepted(client: httpx.AsyncClient, device: Device) -> None:
    batch = telemetry_batch(1)

    response = await client.post(
        URL,
        content=gzip.compress(batch.model_dump_json().encode()),
        headers={**device.auth, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )

    assert response.status_code == 200
    assert response.json()["duplicate"] is False
    assert (await _totals(client)).batches == 1


async def test_a_gzip_body_that_unpacks_large_is_accepted_whole(
    client: httpx.AsyncClient, device: Device
) -> None:
    # Small bodies are unpacked on the event loop; this one, padded with the blanks JSON
    # allows, unpacks past that size.
    body = telemetry_batch(1).model_dump_json().encode() + b" " * (70 * 1024)

    response = await client.post(
        URL,
        content=gzip.compress(body),
        headers={**device.auth, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )

    assert len(body) > 64 * 1024
    assert response.status_code == 200
    assert (await _totals(client)).batches == 1


async def test_a_body_that_is_not_gzip_is_400(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    response = await client.post(
        URL,
        content=telemetry_batch(1).model_dump_json(),
        headers={**device.auth, "Content-Encoding": "gzip"},
    )

    assert response.status_code == 400
    assert "gzip" in response.json()["detail"]
    assert count(hub, TelemetryRow) == 0


async def test_a_truncated_gzip_body_is_400(client: httpx.AsyncClient, device: Device) -> None:
    packed = gzip.compress(telemetry_batch(1).model_dump_json().encode())

    response = await client.post(
        URL, content=packed[:-12], headers={**device.auth, "Content-Encoding": "gzip"}
    )

    assert response.status_code == 400
    assert "truncated" in response.json()["detail"]


async def test_telemetry_for_an_unknown_device_is_401_like_a_wrong_token(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    response = await client.post(
        "/api/v1/devices/ghost/telemetry",
        content=telemetry_batch(1).model_dump_json(),
        headers=device.auth,
    )

    assert response.status_code == 401
    assert response.json()["detail"].startswith("device 'ghost' needs its own device token")
    assert count(hub, TelemetryRow) == 0
    assert count(hub, DeviceRow) == 1


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
async def test_telemetry_without_the_device_token_is_401(
    client: httpx.AsyncClient, hub: HubContext, device: Device, headers: dict[str, str]
) -> None:
    response = await client.post(URL, content=telemetry_batch(1).model_dump_json(), headers=headers)

    assert response.status_code == 401
    assert "device token" in response.json()["detail"]
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert count(hub, TelemetryRow) == 0


async def test_another_devices_token_is_401(
    client: httpx.AsyncClient, hub: HubContext, device: Device, enrol: Enrol
) -> None:
    other = await enrol("motor-2")

    response = await client.post(
        URL, content=telemetry_batch(1).model_dump_json(), headers=other.auth
    )

    assert response.status_code == 401
    assert count(hub, TelemetryRow) == 0


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        pytest.param(
            telemetry_batch(1).model_dump_json(exclude={"windows"}),
            "body.windows: Field required",
            id="missing field",
        ),
        pytest.param(
            telemetry_batch(1).model_dump_json().replace('"windows":10', '"windows":"ten"'),
            "body.windows: Input should be a valid integer, unable to parse string as an integer",
            id="wrong type",
        ),
        pytest.param(
            telemetry_batch(1).model_dump_json().replace('"seq":1', '"seq":0'),
            "body.seq: Input should be greater than or equal to 1",
            id="out of range",
        ),
        pytest.param(
            telemetry_batch(1).model_dump_json()[:-1],
            "body: Invalid JSON: EOF while parsing an object at line 1 column",
            id="bad json",
        ),
    ],
)
async def test_a_malformed_batch_names_the_field_and_stores_nothing(
    client: httpx.AsyncClient, hub: HubContext, device: Device, body: str, detail: str
) -> None:
    before = await client.get("/api/v1/devices/motor-1", headers=ADMIN)

    response = await client.post(URL, content=body, headers=device.auth)

    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail)
    assert count(hub, TelemetryRow) == 0
    assert (await client.get("/api/v1/devices/motor-1", headers=ADMIN)).json() == before.json()


async def test_several_problems_are_listed_on_one_line(
    client: httpx.AsyncClient, device: Device
) -> None:
    body = telemetry_batch(1).model_dump_json(exclude={"windows", "raw_bytes"})

    response = await client.post(URL, content=body, headers=device.auth)

    assert response.json()["detail"] == (
        "body.windows: Field required; body.raw_bytes: Field required"
    )


async def test_the_outbox_counts_are_the_devices_latest_totals_in_any_order(
    client: httpx.AsyncClient, device: Device
) -> None:
    batches = [
        telemetry_batch(1, outbox_dropped=2, failed_chunks=1),
        telemetry_batch(3, outbox_dropped=7, dead_lettered=1, failed_chunks=2),
        # Sent late: it carries older totals, which must not lower the newer ones.
        telemetry_batch(2, outbox_dropped=5, dead_lettered=0),
    ]

    for batch in batches:
        await client.post(URL, content=batch.model_dump_json(), headers=device.auth)
    totals = await _totals(client)

    assert (totals.outbox_dropped, totals.dead_lettered, totals.failed_chunks) == (7, 1, 3)


async def test_the_latest_predictions_are_those_of_the_newest_batch_in_any_order(
    client: httpx.AsyncClient, device: Device
) -> None:
    batches = [
        telemetry_batch(1, predictions={"normal": 10}),
        telemetry_batch(3, predictions={"worn": 8, "normal": 2}),
        telemetry_batch(2, predictions={"imbalance": 10}),  # sent late
    ]

    for batch in batches:
        await client.post(URL, content=batch.model_dump_json(), headers=device.auth)
    totals = await _totals(client)

    assert totals.latest_predictions == {"worn": 8, "normal": 2}
    assert totals.predictions == {"normal": 12, "worn": 8, "imbalance": 10}


async def test_totals_keep_a_bounded_number_of_names_and_lose_no_count(
    client: httpx.AsyncClient, device: Device
) -> None:
    for seq in (1, 2):
        names = {f"label_{seq}_{i}": 1 for i in range(200)}
        batch = telemetry_batch(seq, predictions=names, bad_input={})
        await client.post(URL, content=batch.model_dump_json(), headers=device.auth)

    totals = (await client.get("/api/v1/devices/motor-1", headers=ADMIN)).json()["telemetry"]

    assert len(totals["predictions"]) == 256
    assert sum(totals["predictions"].values()) == 400
    assert totals["predictions"]["other"] == 400 - 255


async def test_rolling_drift_waits_for_enough_windows_then_shows_the_shift(
    client: httpx.AsyncClient, device: Device
) -> None:
    digest = await registered_with_reference(client)
    steady = [monitored_batch(seq, digest, STEADY) for seq in (1, 2)]
    shifted = monitored_batch(3, digest, SHIFTED, p99_ms=12.5, anomaly_max=4.0, rss_bytes=7)

    for body in steady:
        await client.post(URL, content=body, headers=device.auth)
    waiting = await _totals(client)
    await client.post(URL, content=shifted, headers=device.auth)
    drifted = await _totals(client)

    assert waiting.drift_windows == 80 < DRIFT_WINDOWS
    assert waiting.drift_psi is None and waiting.drift_psi_by_feature == {}
    assert drifted.drift_windows == 120
    assert drifted.drift_psi_by_feature["rms"] > 0.2 > drifted.drift_psi_by_feature["peak"]
    assert drifted.drift_psi == drifted.drift_psi_by_feature["rms"]
    assert drifted.drift_ks == drifted.drift_ks_by_feature["rms"] == pytest.approx(0.25)
    assert (drifted.p99_ms, drifted.anomaly_max, drifted.rss_bytes) == (12.5, 4.0, 7)
    assert drifted.changes == {"confidence": 3}


async def test_rolling_drift_counts_only_the_bundle_running_now(
    client: httpx.AsyncClient, device: Device
) -> None:
    digest = await registered_with_reference(client)
    other = monitored_batch(1, "cd" * 32, STEADY)  # a bundle this hub never registered
    late = monitored_batch(2, digest, SHIFTED)
    bodies = [monitored_batch(seq, digest, STEADY) for seq in (3, 4, 5)]

    for body in (other, *bodies):
        await client.post(URL, content=body, headers=device.auth)
    steady = await _totals(client)
    await client.post(URL, content=late, headers=device.auth)  # arrives after seq 5
    after_late = await _totals(client)
    await client.post(URL, content=monitored_batch(6, "cd" * 32, STEADY), headers=device.auth)
    unregistered = await _totals(client)

    assert steady.drift_windows == 120 and steady.drift_psi == pytest.approx(0.0)
    assert after_late.drift_psi == steady.drift_psi  # no newer than the latest
    assert unregistered.drift_psi is None and unregistered.drift_windows == 0


async def test_a_sketch_that_does_not_fit_the_reference_is_left_out(
    client: httpx.AsyncClient, device: Device
) -> None:
    digest = await registered_with_reference(client)
    ragged = monitored_batch(1, digest, [[40], [10, 10, 10, 10]])
    too_wide = monitored_batch(2, digest, [[10, 10, 10, 10, 0], [10, 10, 10, 10, 0]])

    answers = [await client.post(URL, content=b, headers=device.auth) for b in (ragged, too_wide)]
    totals = await _totals(client)

    assert [a.status_code for a in answers] == [200, 200]
    assert totals.batches == 2 and totals.drift_windows == 0 and totals.drift_psi is None
