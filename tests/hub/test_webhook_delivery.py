"""The hub's deliverer with receivers it cannot reach: every attempt logged, a wait begun
before a restart kept after it, and a log that stays bounded."""

import asyncio
import logging
from datetime import timedelta

import httpx
import pytest

from edgestack.hub import HubSettings
from edgestack.hub.context import HubContext
from edgestack.hub.store import events, leases, webhooks
from edgestack.hub.store.db import Window, utcnow
from edgestack.protocol import DeliveryView, WebhookRequest

from .factories import ADMIN, wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(settings: HubSettings) -> HubSettings:
    return settings.model_copy(update={"webhook_attempts": 2, "webhook_log_rows": 3})


def _subscribe(hub: HubContext, url: str, retry_in_s: float | None = None) -> tuple[int, int]:
    """A subscription to `url` as an older hub let it be made (its URL unchecked) with one
    event to deliver, already tried once and due again in `retry_in_s` when given; the ids of
    both."""
    with hub.db.writer() as session:
        view = webhooks.create(session, WebhookRequest.model_construct(url=url), "whsec_AAAA")
        events.record(session, "rollout_started", "rollout 1 began", severity="info")
        session.flush()
        [event] = events.since(session, Window(after_id=view.delivered_id, limit=1))
        if retry_in_s is not None:
            tried = webhooks.Attempt(event.id, 1, 503, "answered 503", 1.0, "retrying", retry_in_s)
            webhooks.record(session, view.id, tried, keep=10)
        session.commit()
    return view.id, event.id


async def _log(client: httpx.AsyncClient, webhook_id: int) -> list[DeliveryView]:
    response = await client.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=ADMIN)
    return [DeliveryView.model_validate(entry) for entry in response.json()]


async def test_a_url_the_http_client_cannot_read_is_logged_as_a_failed_attempt_and_passed(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    webhook_id, event_id = _subscribe(hub, "http://xn--a.com/")

    for _ in range(1000):
        log = await _log(client, webhook_id)
        if log and log[-1].outcome == "failed":
            break
        await asyncio.sleep(0.05)

    assert [(e.event_id, e.attempt, e.outcome) for e in log] == [
        (event_id, 1, "retrying"),
        (event_id, 2, "failed"),
    ]
    assert all(e.status_code is None and "Codepoint U+0080" in (e.error or "") for e in log)
    [view] = (await client.get("/api/v1/webhooks", headers=ADMIN)).json()
    assert view["delivered_id"] == event_id


async def test_a_retry_due_later_when_the_hub_starts_waits_till_then(
    client: httpx.AsyncClient, hub: HubContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edgestack.hub.webhooks")
    webhook_id, event_id = _subscribe(hub, "http://127.0.0.1:9/", retry_in_s=3600)

    for _ in range(1000):
        if any("due to be tried again" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.05)

    assert f"event {event_id} is due to be tried again" in caplog.text
    assert [(e.attempt, e.outcome) for e in await _log(client, webhook_id)] == [(1, "retrying")]


async def test_the_delivery_log_keeps_only_the_newest_attempts(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    with hub.db.writer() as session:
        view = webhooks.create(
            session, WebhookRequest(url="http://receiver.example/in"), "whsec_AAAA"
        )
        for event_id in range(1, 4):
            for attempt, outcome in [(1, "retrying"), (2, "failed")]:
                tried = webhooks.Attempt(event_id, attempt, 503, "503", 1.0, outcome, None)
                webhooks.record(session, view.id, tried, keep=3)
        session.commit()

    log = await _log(client, view.id)

    assert [(e.event_id, e.attempt) for e in log] == [(2, 2), (3, 1), (3, 2)]


async def test_a_resumed_event_counts_the_attempts_made_before_even_once_pruned(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    due = utcnow() + timedelta(hours=1)
    with hub.db.writer() as session:
        view = webhooks.create(
            session, WebhookRequest(url="http://receiver.example/in"), "whsec_AAAA"
        )
        events.record(session, "rollout_started", "rollout 1 began", severity="info")
        session.flush()
        for attempt in range(1, 5):
            tried = webhooks.Attempt(
                view.delivered_id + 1, attempt, 503, "503", 1.0, "retrying", 3600
            )
            webhooks.record(session, view.id, tried, keep=2)
        pending = webhooks.pending(session, view.id, 10)
        session.rollback()

    assert pending is not None
    assert pending.tried == 4
    assert pending.due_at is not None
    assert abs((pending.due_at - due).total_seconds()) < 60


async def test_only_the_holder_of_the_webhooks_lease_delivers(
    client: httpx.AsyncClient, hub: HubContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edgestack.hub.lease")
    await wait_until(lambda: "took the webhooks lease" in caplog.text)
    with hub.db.writer() as session:
        leases.release(session, leases.WEBHOOKS, hub.holder)
        assert leases.take(session, leases.WEBHOOKS, "another replica", 60)
        session.commit()
    await wait_until(lambda: "lost the webhooks lease" in caplog.text)
    webhook_id, event_id = _subscribe(hub, "http://xn--a.com/")
    caplog.clear()

    with hub.db.writer() as session:
        leases.release(session, leases.WEBHOOKS, "another replica")
        session.commit()
    await wait_until(lambda: "took the webhooks lease" in caplog.text)
    for _ in range(1000):
        log = await _log(client, webhook_id)
        if log and log[-1].outcome == "failed":
            break
        await asyncio.sleep(0.05)

    assert [(e.event_id, e.outcome) for e in log] == [(event_id, "retrying"), (event_id, "failed")]
