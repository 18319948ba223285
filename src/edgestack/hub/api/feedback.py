from typing import Annotated

from fastapi import APIRouter, Depends

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import AuditedOperatorDep, WriteSessionDep
from edgestack.hub.store import feedback
from edgestack.protocol import FeedbackAck, FeedbackBatch

__all__ = ["router"]

router = APIRouter(tags=["feedback"])

FeedbackBody = Annotated[FeedbackBatch, Depends(json_body(FeedbackBatch))]


@router.post("/feedback", operation_id="feedback-post")
def post_feedback(
    audit: AuditedOperatorDep, batch: FeedbackBody, session: WriteSessionDep
) -> FeedbackAck:
    """Ground truth: spans in which a device's machine was in a known state. Stored once per
    `batch_id`; a label the device's model does not know is accepted, and said in `notes`.
    The telemetry batches lying wholly inside a span count towards live accuracy; the
    `accuracy` alert judges a batch as it arrives, so only spans posted before their
    telemetry (an operator's "in state L until the end of the shift") can raise it."""
    ack = feedback.ingest(session, batch)
    audit.changed(None, batch)
    session.commit()
    return ack
