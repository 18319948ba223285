"""Alerts with hysteresis, evaluated as telemetry arrives, and their rules."""

import httpx
import pytest

from edgestack.hub.context import HubContext
from edgestack.hub.store.tables import AlertRow
from edgestack.protocol import AlertRule, AlertView, EventView, MonitorReport

from .factories import (
    ADMIN,
    SHIFTED,
    STEADY,
    Device,
    count,
    monitored_batch,
    registered_with_reference,
    telemetry_batch,
)

pytestmark = pytest.mark.anyio

URL = "/api/v1/devices/motor-1/telemetry"


# The hysteresis tests watch the p99 latency: a batch says it as it is, where drift is
# rolled over the batches that cover enough windows. Raise at 20 ms, clear at 10, 2 in a row.
P99_RULE = {"signal": "p99_ms", "raise_at": 20, "clear_at": 10}


@pytest.fixture
async def p99_rule(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/v1/alerts/rules", json={"rules": [P99_RULE]}, headers=ADMIN)
    assert response.status_code == 200, response.text


def slow(seq: int, p99_ms: float) -> str:
    """A batch whose p99 latency is `p99_ms`."""
    batch = telemetry_batch(
        seq, bad_input={}, bad_examples=[], monitoring=MonitorReport(p99_ms=p99_ms)
    )
    return batch.model_dump_json()


async def send(client: httpx.AsyncClient, device: Device, *bodies: str) -> None:
    for body in bodies:
        response = await client.post(URL, content=body, headers=device.auth)
        assert response.status_code == 200, response.text


async def alerts(client: httpx.AsyncClient, **params: str) -> list[AlertView]:
    response = await client.get("/api/v1/alerts", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    return [AlertView.model_validate(a) for a in response.json()]


async def alert_events(client: httpx.AsyncClient) -> list[EventView]:
    response = await client.get("/api/v1/events", headers=ADMIN)
    views = [EventView.model_validate(e) for e in response.json()]
    return [v for v in views if v.event.kind.startswith("alert_")]


@pytest.mark.usefixtures("p99_rule")
async def test_a_signal_flapping_around_raise_at_raises_once_and_clears_after_clear_batches(
    client: httpx.AsyncClient, device: Device
) -> None:
    # 25 then 30 raise it; 5 then 12 (between the two) and 5 do not clear it yet.
    values = [25, 15, 25, 30, 19, 21, 50, 15, 5, 12, 5]

    await send(client, device, *(slow(i + 1, v) for i, v in enumerate(values)))
    still_open = await alerts(client)
    await send(client, device, slow(len(values) + 1, 8))

    assert [a.state for a in still_open] == ["open"]
    assert still_open[0].first_value == 30
    assert still_open[0].worst_value == 50
    assert still_open[0].last_value == 5
    [cleared] = await alerts(client)
    assert (cleared.signal, cleared.state, cleared.device_id) == ("p99_ms", "cleared", "motor-1")
    assert cleared.cleared_at is not None and cleared.last_value == 8
    kinds = [(e.event.kind, e.device_id) for e in await alert_events(client)]
    assert kinds == [("alert_raised", "motor-1"), ("alert_cleared", "motor-1")]


@pytest.mark.usefixtures("p99_rule")
async def test_an_alert_cleared_is_raised_again_by_a_new_streak(
    client: httpx.AsyncClient, device: Device
) -> None:
    values = [30, 30, 0, 0, 30, 30]

    await send(client, device, *(slow(i + 1, v) for i, v in enumerate(values)))

    assert [a.state for a in await alerts(client)] == ["cleared", "open"]
    assert [a.id for a in await alerts(client, open="true")] == [2]


@pytest.mark.usefixtures("p99_rule")
async def test_a_duplicate_or_older_batch_evaluates_nothing(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    # Each of these, if evaluated, would make a second batch in a row past raise_at.
    first, late = slow(1, 30), slow(2, 30)
    await send(client, device, first)

    await send(client, device, first)
    await send(client, device, slow(3, 0), slow(4, 30), late)

    assert count(hub, AlertRow) == 0
    assert await alert_events(client) == []


@pytest.mark.usefixtures("p99_rule")
async def test_a_batch_that_says_nothing_of_a_signal_neither_counts_nor_breaks_its_streak(
    client: httpx.AsyncClient, device: Device
) -> None:
    silent = telemetry_batch(2, bad_input={}, bad_examples=[]).model_dump_json()  # no monitoring

    await send(client, device, slow(1, 30), silent)
    between = await alerts(client)
    await send(client, device, slow(3, 30))

    assert between == []
    [alert] = await alerts(client)
    assert (alert.signal, alert.state) == ("p99_ms", "open")


async def test_drift_is_alerted_on_the_rolling_drift_once_enough_windows_show_it(
    client: httpx.AsyncClient, device: Device
) -> None:
    digest = await registered_with_reference(client)
    # 40 windows a batch: three steady ones cover the 120 the rolling drift needs, then the
    # first feature leaves its training range; the default rule wants 0.2 twice in a row.
    steady = [monitored_batch(seq, digest, STEADY) for seq in (1, 2, 3)]
    shifted = [monitored_batch(seq, digest, SHIFTED) for seq in (4, 5, 6, 7)]

    await send(client, device, *steady, *shifted[:1])
    early = await alerts(client)
    await send(client, device, *shifted[1:])

    assert early == []  # one shifted batch of three does not move the PSI past 0.2 twice
    [alert] = await alerts(client)
    assert (alert.signal, alert.state, alert.device_id) == ("drift_psi", "open", "motor-1")
    assert alert.first_value > 0.2 and alert.bundle_digest == digest


async def test_each_signal_is_read_from_the_batch(
    client: httpx.AsyncClient, hub: HubContext, device: Device
) -> None:
    rules = [
        {"signal": "error_rate", "raise_at": 0.5, "clear_at": 0.1, "for_batches": 1},
        {"signal": "bad_input_rate", "raise_at": 0.5, "clear_at": 0.1, "for_batches": 1},
        {"signal": "p99_ms", "raise_at": 20, "clear_at": 10, "for_batches": 1},
        {"signal": "anomaly_max", "raise_at": 3, "clear_at": 2, "for_batches": 1},
    ]
    await client.put("/api/v1/alerts/rules", json={"rules": rules}, headers=ADMIN)
    # 10 of 20 chunks failed; 3000 of the 4000 float32 values read were bad.
    batch = telemetry_batch(
        1,
        chunks=20,
        failed_chunks=10,
        raw_bytes=16_000,
        bad_input={"nan": 3000},
        monitoring=MonitorReport(p99_ms=25.0, anomaly_max=2.5),
    )

    await send(client, device, batch.model_dump_json())

    raised = {a.signal: a.first_value for a in await alerts(client)}
    assert raised == {"error_rate": 0.5, "bad_input_rate": 0.75, "p99_ms": 25.0}


async def test_an_agent_that_does_not_count_chunks_has_no_error_rate_and_no_read_all_bad(
    client: httpx.AsyncClient, device: Device
) -> None:
    rules = [
        {"signal": "error_rate", "raise_at": 0.5, "clear_at": 0.1, "for_batches": 1},
        {"signal": "bad_input_rate", "raise_at": 0.5, "clear_at": 0.1, "for_batches": 1},
    ]
    await client.put("/api/v1/alerts/rules", json={"rules": rules}, headers=ADMIN)
    # a source failing every read: bad input, and not one byte of samples
    batch = telemetry_batch(1, failed_chunks=10, raw_bytes=0, bad_input={"source_error": 3})

    await send(client, device, batch.model_dump_json())

    assert {a.signal: a.first_value for a in await alerts(client)} == {"bad_input_rate": 1.0}


async def test_rules_are_read_set_and_kept(client: httpx.AsyncClient, device: Device) -> None:
    rule = {"signal": "p99_ms", "raise_at": 50, "clear_at": 30, "for_batches": 1}

    put = await client.put("/api/v1/alerts/rules", json={"rules": [rule]}, headers=ADMIN)
    await send(client, device, slow(1, 40), slow(2, 60))
    got = await client.get("/api/v1/alerts/rules", headers=ADMIN)

    assert put.status_code == 200, put.text
    assert got.json() == put.json()
    rules = {r["signal"]: AlertRule.model_validate(r) for r in got.json()}
    assert rules["p99_ms"] == AlertRule.model_validate(rule)
    assert rules["drift_psi"] == AlertRule(signal="drift_psi", raise_at=0.2, clear_at=0.1)
    assert len(rules) == 7
    [alert] = await alerts(client)
    assert alert.first_value == 60


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ({"signal": "drift_psi", "raise_at": 0.2, "clear_at": 0.3}, "below raise_at"),
        ({"signal": "drift_psi", "raise_at": 0.2, "clear_at": 0.2}, "below raise_at"),
        ({"signal": "accuracy", "raise_at": 0.8, "clear_at": 0.7}, "above raise_at"),
    ],
)
async def test_a_rule_clearing_on_the_wrong_side_is_refused_naming_clear_at(
    client: httpx.AsyncClient, rule: dict[str, object], says: str
) -> None:
    response = await client.put("/api/v1/alerts/rules", json={"rules": [rule]}, headers=ADMIN)

    assert response.status_code == 422
    assert "clear_at" in response.json()["detail"]
    assert says in response.json()["detail"]
    assert (await client.get("/api/v1/alerts/rules", headers=ADMIN)).json()[0]["raise_at"] == 0.2


async def test_a_signal_given_twice_or_unknown_is_refused(client: httpx.AsyncClient) -> None:
    rule = {"signal": "drift_psi", "raise_at": 0.2, "clear_at": 0.1}
    unknown = {"signal": "mood", "raise_at": 0.2, "clear_at": 0.1}

    twice = await client.put("/api/v1/alerts/rules", json={"rules": [rule, rule]}, headers=ADMIN)
    other = await client.put("/api/v1/alerts/rules", json={"rules": [unknown]}, headers=ADMIN)

    assert twice.status_code == other.status_code == 422
    assert "drift_psi given twice" in twice.json()["detail"]
    assert "signal" in other.json()["detail"]


async def test_alerts_need_the_admin_token(client: httpx.AsyncClient, device: Device) -> None:
    responses = [
        await client.get("/api/v1/alerts", headers=device.auth),
        await client.get("/api/v1/alerts/rules", headers=device.auth),
        await client.put("/api/v1/alerts/rules", json={"rules": []}, headers=device.auth),
    ]

    assert [r.status_code for r in responses] == [401, 401, 401]
