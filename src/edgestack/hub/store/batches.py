"""Which event, sample, window and feedback batches arrived: one sent again is acknowledged,
not stored."""

from typing import Literal
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.orm import Session

from edgestack.hub.store.db import utcnow
from edgestack.hub.store.tables import ReceivedBatchRow

__all__ = ["Kind", "claim"]

Kind = Literal["events", "samples", "windows", "feedback"]


def claim(session: Session, device_id: str, kind: Kind, batch_id: UUID, accepted: int) -> bool:
    """Record the batch as received; False when it already was, and nothing is written."""
    seen = session.scalar(
        select(ReceivedBatchRow.id).where(
            ReceivedBatchRow.device_id == device_id,
            ReceivedBatchRow.kind == kind,
            ReceivedBatchRow.batch_id == str(batch_id),
        )
    )
    if seen is not None:
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
