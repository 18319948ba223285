"""Events from the devices and the hub's own, kept in arrival order."""

import uuid
from collections.abc import Sequence
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from edgestack.hub.errors import Forbidden
from edgestack.hub.store import batches, devices
from edgestack.hub.store.db import Window, utcnow
from edgestack.hub.store.tables import EventRow
from edgestack.protocol import (
    HUB_EVENT_KINDS,
    Event,
    EventBatch,
    EventKind,
    EventView,
    IngestAck,
)

__all__ = ["ingest", "record", "since"]


def ingest(session: Session, device_id: str, batch: EventBatch) -> IngestAck:
    for i, event in enumerate(batch.events):
        # A device sending one of these would forge the hub's word.
        if event.kind in HUB_EVENT_KINDS:
            raise Forbidden(
                f"body.events[{i}].kind: '{event.kind}' is raised by the hub alone; a device "
                "sends the kinds of its own: alarms, model loads, failures, drops and errors"
            )
    row = devices.get(session, device_id)
    if not batches.claim(session, device_id, "events", batch.batch_id, len(batch.events)):
        return IngestAck(batch_id=batch.batch_id, accepted=0, duplicate=True)
    now = utcnow()
    session.add_all(
        EventRow(
            device_id=device_id,
            batch_id=str(batch.batch_id),
            received_at=now,
            event=event.model_dump(mode="json"),
        )
        for event in batch.events
    )
    row.last_seen = now
    return IngestAck(batch_id=batch.batch_id, accepted=len(batch.events), duplicate=False)


def record(
    session: Session,
    kind: EventKind,
    message: str,
    *,
    device_id: str | None = None,
    severity: Literal["info", "warning", "critical"] = "warning",
    bundle_digest: str | None = None,
) -> Event:
    """Store an event the hub raises itself, about `device_id` or about no device."""
    now = utcnow()
    event = Event(
        event_id=uuid.uuid4(),
        at=now,
        kind=kind,
        severity=severity,
        message=message[:2000],
        bundle_digest=bundle_digest,
    )
    session.add(
        EventRow(
            device_id=device_id, batch_id="", received_at=now, event=event.model_dump(mode="json")
        )
    )
    return event


def since(
    session: Session,
    window: Window | None = None,
    *,
    device_id: str | None = None,
    kinds: Sequence[str] = (),
    severities: Sequence[str] = (),
) -> list[EventView]:
    """The events in `window`, of `device_id` only when given, of `kinds` and `severities`
    only when they name any."""
    query = (window or Window()).apply(select(EventRow), EventRow.id)
    if device_id is not None:
        query = query.where(EventRow.device_id == device_id)
    if kinds:
        query = query.where(EventRow.event["kind"].as_string().in_(kinds))
    if severities:
        query = query.where(EventRow.event["severity"].as_string().in_(severities))
    return [
        EventView(
            id=row.id,
            device_id=row.device_id,
            received_at=row.received_at,
            event=Event.model_validate(row.event),
        )
        for row in session.scalars(query)
    ]
