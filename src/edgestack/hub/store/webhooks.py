"""Webhooks: subscriptions to events, each with its own place in the event stream, and the
log of every attempt to deliver to one."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from edgestack.hub.errors import NotFound
from edgestack.hub.store import events
from edgestack.hub.store.db import Window, utcnow
from edgestack.hub.store.tables import EventRow, WebhookDeliveryRow, WebhookRow
from edgestack.protocol import (
    DeliveryOutcome,
    DeliveryView,
    EventFilter,
    EventView,
    WebhookRequest,
    WebhookView,
)

__all__ = [
    "Attempt",
    "Pending",
    "create",
    "deliveries",
    "ids",
    "listed",
    "message_id",
    "pending",
    "record",
    "remove",
]


def create(session: Session, request: WebhookRequest, secret: str) -> WebhookView:
    """Subscribe `request.url` to the events stored from now on that its filters take; the
    view holds `secret`, which it is never shown again."""
    latest = session.scalar(select(func.max(EventRow.id))) or 0
    row = WebhookRow(
        url=request.url,
        description=request.description,
        filters=request.model_dump(mode="json", include=set(EventFilter.model_fields)),
        secret=secret,
        created_at=utcnow(),
        delivered_id=latest,
    )
    session.add(row)
    session.flush()
    return _view(row).model_copy(update={"secret": secret})


def listed(session: Session) -> list[WebhookView]:
    """Every subscription, oldest first, without its secret."""
    return [_view(row) for row in session.scalars(select(WebhookRow).order_by(WebhookRow.id))]


def remove(session: Session, webhook_id: int) -> WebhookView:
    """Delete a subscription and its delivery log, giving what it was; 404 when there is
    none."""
    row = _get(session, webhook_id)
    removed = _view(row)
    session.execute(delete(WebhookDeliveryRow).where(WebhookDeliveryRow.webhook_id == row.id))
    session.delete(row)
    return removed


def deliveries(session: Session, webhook_id: int, window: Window) -> list[DeliveryView]:
    """The attempts to deliver to a subscription in `window`; 404 when there is none."""
    _get(session, webhook_id)
    query = window.apply(
        select(WebhookDeliveryRow).where(WebhookDeliveryRow.webhook_id == webhook_id),
        WebhookDeliveryRow.id,
    )
    return [
        DeliveryView.model_validate(
            {
                "id": row.id,
                "webhook_id": row.webhook_id,
                "event_id": row.event_id,
                "message_id": message_id(row.event_id),
                "attempt": row.attempt,
                "at": row.at,
                "status_code": row.status_code,
                "error": row.error,
                "duration_ms": row.duration_ms,
                "outcome": row.outcome,
                "next_attempt_at": row.next_attempt_at,
            }
        )
        for row in session.scalars(query)
    ]


def message_id(event_id: int) -> str:
    """The `webhook-id` of event `event_id`'s deliveries: the same on every retry."""
    return f"evt_{event_id}"


def ids(session: Session) -> list[int]:
    """The id of every subscription."""
    return list(session.scalars(select(WebhookRow.id)))


@dataclass(frozen=True)
class Pending:
    """What a subscription has to deliver next: `events` in order, the attempts already
    made at the first (by a hub that stopped while retrying it), and when the last of them
    said to try it again (None when there was none, or no wait)."""

    url: str
    secret: str
    events: list[EventView]
    tried: int
    due_at: datetime | None = None


def pending(session: Session, webhook_id: int, limit: int) -> Pending | None:
    """The next at most `limit` events subscription `webhook_id` takes; None once it is
    deleted."""
    row = session.get(WebhookRow, webhook_id)
    if row is None:
        return None
    taken = EventFilter.model_validate(row.filters)
    page = events.since(session, Window(after_id=row.delivered_id, limit=limit), taken)
    # The latest attempt alone: its number counts those before it even once older ones are
    # pruned from the log, and its wait is the one still to keep.
    last = (
        session.execute(
            select(WebhookDeliveryRow.attempt, WebhookDeliveryRow.next_attempt_at)
            .where(
                WebhookDeliveryRow.webhook_id == webhook_id,
                WebhookDeliveryRow.event_id == page[0].id,
            )
            .order_by(WebhookDeliveryRow.id.desc())
            .limit(1)
        ).first()
        if page
        else None
    )
    return Pending(
        url=row.url,
        secret=row.secret,
        events=page,
        tried=0 if last is None else last.attempt,
        due_at=None if last is None else last.next_attempt_at,
    )


@dataclass(frozen=True)
class Attempt:
    """How one attempt to deliver an event went."""

    event_id: int
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: float
    outcome: DeliveryOutcome
    retry_in_s: float | None


def record(session: Session, webhook_id: int, attempt: Attempt, keep: int) -> bool:
    """Log `attempt`, keeping the subscription's newest `keep` attempts and deleting older
    ones; once it is the event's last (delivered or failed), move the subscription past
    the event. False, and nothing logged, once it is deleted."""
    row = session.get(WebhookRow, webhook_id)
    if row is None:
        return False
    now = utcnow()
    session.add(
        WebhookDeliveryRow(
            webhook_id=webhook_id,
            event_id=attempt.event_id,
            attempt=attempt.attempt,
            at=now,
            status_code=attempt.status_code,
            error=None if attempt.error is None else attempt.error[:500],
            duration_ms=attempt.duration_ms,
            outcome=attempt.outcome,
            next_attempt_at=None
            if attempt.retry_in_s is None
            else now + timedelta(seconds=attempt.retry_in_s),
        )
    )
    if attempt.outcome != "retrying":
        row.delivered_id = attempt.event_id
    _prune(session, webhook_id, keep)
    return True


def _prune(session: Session, webhook_id: int, keep: int) -> None:
    # Ordered as the (webhook, event) index is: events are delivered in order, so this is
    # newest first, and a receiver dead for months leaves no more than `keep` rows.
    newest_first = (WebhookDeliveryRow.event_id.desc(), WebhookDeliveryRow.id.desc())
    oldest_kept = session.execute(
        select(WebhookDeliveryRow.event_id, WebhookDeliveryRow.id)
        .where(WebhookDeliveryRow.webhook_id == webhook_id)
        .order_by(*newest_first)
        .offset(keep - 1)
        .limit(1)
    ).first()
    if oldest_kept is not None:
        session.execute(
            delete(WebhookDeliveryRow).where(
                WebhookDeliveryRow.webhook_id == webhook_id,
                WebhookDeliveryRow.event_id <= oldest_kept.event_id,
                WebhookDeliveryRow.id < oldest_kept.id,
            )
        )


def _get(session: Session, webhook_id: int) -> WebhookRow:
    row = session.get(WebhookRow, webhook_id)
    if row is None:
        raise NotFound(f"no webhook {webhook_id}; list them with GET /api/v1/webhooks")
    return row


def _view(row: WebhookRow) -> WebhookView:
    return WebhookView.model_validate(
        {
            **row.filters,
            "id": row.id,
            "url": row.url,
            "description": row.description,
            "created_at": row.created_at,
            "delivered_id": row.delivered_id,
        }
    )
