"""Events from the devices and the hub's own, kept in arrival order."""

import uuid
from typing import get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from edgestack.hub.errors import Forbidden
from edgestack.hub.store import batches, devices, targets
from edgestack.hub.store.db import Window, utcnow
from edgestack.hub.store.tables import EventRow
from edgestack.protocol import (
    HUB_EVENT_KINDS,
    Event,
    EventBatch,
    EventFilter,
    EventKind,
    EventView,
    IngestAck,
    Severity,
)

__all__ = ["ingest", "record", "since"]

_SEVERITIES: tuple[Severity, ...] = get_args(Severity)


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
    severity: Severity = "warning",
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
    session: Session, window: Window | None = None, taken: EventFilter | None = None
) -> list[EventView]:
    """The events in `window` that `taken` takes (every one when not given)."""
    query = (window or Window()).apply(select(EventRow), EventRow.id)
    taken = taken or EventFilter()
    if taken.device is not None:
        query = query.where(EventRow.device_id == taken.device)
    if taken.tag:
        # Looked up on each call, so a device tagged while a stream follows joins it.
        query = query.where(EventRow.device_id.in_(targets.carrying(taken.tag)))
    if taken.kind:
        query = query.where(EventRow.event["kind"].as_string().in_(taken.kind))
    if taken.severity is not None:
        worse = _SEVERITIES[_SEVERITIES.index(taken.severity) :]
        query = query.where(EventRow.event["severity"].as_string().in_(worse))
    return [
        EventView(
            id=row.id,
            device_id=row.device_id,
            received_at=row.received_at,
            event=Event.model_validate(row.event),
        )
        for row in session.scalars(query)
    ]
