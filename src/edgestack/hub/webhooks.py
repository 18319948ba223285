"""Webhook delivery: a task in the hub's process that POSTs each subscription's events, in
order and at least once, signed as Standard Webhooks sign them (`webhook-id`,
`webhook-timestamp`, `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of
`{id}.{timestamp}.{body}` keyed by the secret's bytes).

Each subscription follows the events from its own task and its own place in the stream,
which the database keeps, so a slow or dead receiver holds up no other subscription and a
hub started again goes on where it stopped. A refused attempt is tried again after a wait
that doubles each time, up to `webhook_backoff_cap_s`; after `webhook_attempts` the event
is given up on, logged as failed, and the next one goes.

Where several hub replicas share a database, only the one holding the webhooks' lease
(`store.leases`) delivers; another takes over once a killed holder's lease expires. An
attempt in flight when a lease moves may be made again by the new holder: delivery is at
least once, and receivers tell repeats apart by `webhook-id`.
"""

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from datetime import datetime

import httpx

from edgestack.hub.context import HubContext
from edgestack.hub.lease import Lease
from edgestack.hub.store import leases, webhooks
from edgestack.hub.store.db import utcnow
from edgestack.protocol import DeliveryOutcome, EventView

__all__ = ["Deliverer", "new_secret", "signed_headers"]

log = logging.getLogger("edgestack.hub.webhooks")

_SECRET_PREFIX = "whsec_"
_POLL_S = 0.5  # how often a subscription looks for new events, and the set of them for changes
_PAGE = 100


def new_secret() -> str:
    """A fresh signing secret: `whsec_` and 32 random bytes in base64."""
    return _SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of `body` sent as message `message_id` at `timestamp`
    (unix seconds), signed with `secret` (`whsec_<base64>`)."""
    key = base64.b64decode(secret.removeprefix(_SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{base64.b64encode(digest).decode()}",
    }


class Deliverer:
    """Delivers every subscription's events from `run` until `stop`."""

    def __init__(self, hub: HubContext) -> None:
        self._hub = hub
        self._stopping = asyncio.Event()
        self._lease = Lease(hub, leases.WEBHOOKS)

    def stop(self) -> None:
        """End `run`, cancelling deliveries in flight; each goes again when the hub starts."""
        self._stopping.set()

    async def run(self) -> None:
        settings = self._hub.settings
        followers: dict[int, asyncio.Task[None]] = {}
        # Made in a thread: loading the certificate store takes the loop a while.
        http = await asyncio.to_thread(httpx.AsyncClient, timeout=settings.webhook_timeout_s)
        async with http:
            try:
                while not self._stopping.is_set():
                    try:
                        wanted = set(await asyncio.to_thread(self._ids))
                    except Exception:  # the database may be busy; the next look will do
                        log.exception("could not list the webhooks; looking again")
                        # Unsure of the lease, deliver nothing: another replica may hold it.
                        wanted = set(followers) if self._lease.holding else set()
                    for webhook_id in followers.keys() - wanted:
                        followers.pop(webhook_id).cancel()
                    for webhook_id in wanted - followers.keys():
                        followers[webhook_id] = asyncio.create_task(
                            self._follow(webhook_id, http), name=f"webhook-{webhook_id}"
                        )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), _POLL_S)
            finally:
                for task in followers.values():
                    task.cancel()
                await asyncio.gather(*followers.values(), return_exceptions=True)
        await asyncio.to_thread(self._lease.release)

    def _ids(self) -> list[int]:
        """The webhooks to deliver: all of them while this hub holds or can take the
        webhooks' lease, none otherwise."""
        with self._hub.db.writer() as session:
            holding = self._lease.take(session)
            session.commit()
        if not holding:
            return []
        with self._hub.db.session() as session:
            return webhooks.ids(session)

    def _pending(self, webhook_id: int) -> webhooks.Pending | None:
        with self._hub.db.session() as session:
            return webhooks.pending(session, webhook_id, _PAGE)

    def _record(self, webhook_id: int, attempt: webhooks.Attempt) -> bool:
        with self._hub.db.writer() as session:
            kept = webhooks.record(
                session, webhook_id, attempt, self._hub.settings.webhook_log_rows
            )
            session.commit()
        return kept

    async def _follow(self, webhook_id: int, http: httpx.AsyncClient) -> None:
        while True:
            try:
                pending = await asyncio.to_thread(self._pending, webhook_id)
                if pending is None:
                    return  # deleted
                tried, due_at = pending.tried, pending.due_at
                for view in pending.events:
                    if due_at is not None:
                        await self._until(webhook_id, view, due_at)
                    if not await self._deliver(webhook_id, pending, view, tried, http):
                        return
                    tried, due_at = 0, None
            except Exception:  # one bad round must not end the subscription's deliveries
                log.exception("webhook %d: delivery failed; trying again", webhook_id)
            else:
                if len(pending.events) == _PAGE:
                    continue
            await asyncio.sleep(_POLL_S)

    @staticmethod
    async def _until(webhook_id: int, view: EventView, due_at: datetime) -> None:
        """Keep the wait a hub that stopped while retrying `view` had begun."""
        wait_s = (due_at - utcnow()).total_seconds()
        if wait_s > 0:
            log.info(
                "webhook %d: event %d is due to be tried again at %s; waiting till then",
                webhook_id,
                view.id,
                due_at.isoformat(),
            )
            await asyncio.sleep(wait_s)

    async def _deliver(
        self,
        webhook_id: int,
        pending: webhooks.Pending,
        view: EventView,
        tried: int,
        http: httpx.AsyncClient,
    ) -> bool:
        """Deliver `view`, trying again after a wait while refused and attempts are left;
        False once the subscription is deleted."""
        settings = self._hub.settings
        body = view.model_dump_json().encode()
        message_id = webhooks.message_id(view.id)
        attempt = tried + 1
        while True:
            status: int | None = None
            error: str | None = None
            started = time.perf_counter()
            try:
                headers = signed_headers(pending.secret, message_id, int(time.time()), body)
                headers["content-type"] = "application/json"
                # Streamed and never read: a receiver's answer is its status alone.
                async with http.stream("POST", pending.url, content=body, headers=headers) as sent:
                    status = sent.status_code
                if not 200 <= status < 300:
                    error = f"answered {status}; a delivery needs a 2xx answer"
            # Not only httpx's own errors: a URL it cannot read (an IDNA host spelled wrong)
            # raises others, and each must count as a failed attempt, or the event is
            # tried again at once for ever and the ones after it never go.
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            duration_ms = (time.perf_counter() - started) * 1000
            last = attempt >= settings.webhook_attempts
            retry_in_s = (
                None
                if error is None or last
                else min(
                    settings.webhook_backoff_cap_s, settings.webhook_backoff_s * 2 ** (attempt - 1)
                )
            )
            outcome: DeliveryOutcome = (
                "delivered" if error is None else "failed" if last else "retrying"
            )
            news = webhooks.Attempt(
                view.id, attempt, status, error, duration_ms, outcome, retry_in_s
            )
            if not await asyncio.to_thread(self._record, webhook_id, news):
                return False
            if outcome == "failed":
                log.warning(
                    "webhook %d: gave up on event %d after %d attempts (%s); going on with the "
                    "next",
                    webhook_id,
                    view.id,
                    attempt,
                    error,
                )
            if retry_in_s is None:
                return True
            await asyncio.sleep(retry_in_s)
            attempt += 1
