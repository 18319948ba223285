"""Which event, sample, window and feedback batches arrived, and the telemetry batches
retention removed: one sent again is acknowledged, not stored."""

from typing import Literal
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from edgestack.hub.store.db import utcnow
from edgestack.hub.store.tables import ReceivedBatchRow

__all__ = ["Kind", "claim", "seen"]

# Telemetry batches are their own record while stored; retention keeps the ids of those it
# removes as received batches of kind "telemetry".
Kind = Literal["events", "samples", "windows", "feedback", "telemetry"]


def seen(session: Session, device_id: str, kind: Kind, batch_id: UUID) -> bool:
    """Whether the batch was received and its id is still kept."""
    return (
        session.scalar(
            select(ReceivedBatchRow.id).where(
                ReceivedBatchRow.device_id == device_id,
                ReceivedBatchRow.kind == kind,
                ReceivedBatchRow.batch_id == str(batch_id),
            )
        )
        is not None
    )


def claim(session: Session, device_id: str, kind: Kind, batch_id: UUID, accepted: int) -> bool:
    """Record the batch as received; False when it already was, and nothing is written."""
    if seen(session, device_id, kind, batch_id):
        return False
    session.add(
        ReceivedBatchRow(
            device_id=device_id,
            kind=kind,
            batch_id=str(batch_id),
            accepted=accepted,
            received_at=utcnow(),
        )
    )
    return True
