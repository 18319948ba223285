"""Windows for review: asked of a device, sent by it, listed and labelled by an operator."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import (
    AuditedOperatorDep,
    DeviceDep,
    HubDep,
    SessionDep,
    ViewerDep,
    WindowDep,
    WriteSessionDep,
)
from edgestack.hub.api.paging import PagerDep
from edgestack.hub.store import devices, review
from edgestack.protocol import (
    DesiredState,
    DeviceId,
    IngestAck,
    LabelledWindows,
    ReviewWindowView,
    WindowAsk,
    WindowBatch,
    WindowLabels,
)

__all__ = ["router"]

router = APIRouter(tags=["review"])

AskBody = Annotated[WindowAsk, Depends(json_body(WindowAsk))]
WindowBody = Annotated[WindowBatch, Depends(json_body(WindowBatch))]
LabelsBody = Annotated[WindowLabels, Depends(json_body(WindowLabels))]


@router.post("/devices/{device_id}/window-requests", operation_id="review-ask")
def ask(
    audit: AuditedOperatorDep,
    device_id: Annotated[DeviceId, Path(description="the device's id")],
    body: AskBody,
    hub: HubDep,
    session: WriteSessionDep,
) -> DesiredState:
    """Ask the device for the `count` recent windows its model was least sure of. It sends
    them once, as soon as its model has classified some; they are listed by GET /api/v1/windows."""
    before = devices.desired(session, device_id)
    state = review.ask(session, device_id, body.count)
    audit.changed(before, state)
    session.commit()
    hub.desired_changed([device_id])
    return state


@router.post("/devices/{device_id}/windows", operation_id="review-ingest")
def ingest(device_id: DeviceDep, batch: WindowBody, session: WriteSessionDep) -> IngestAck:
    """Store windows the device was asked for (403 for any other request or beyond its
    count); once per batch id."""
    ack = review.ingest(session, device_id, batch)
    session.commit()
    return ack


@router.get("/windows", operation_id="review-list")
def list_windows(
    _: ViewerDep,
    session: SessionDep,
    window: WindowDep,
    pager: PagerDep,
    device: Annotated[DeviceId | None, Query(description="only this device's windows")] = None,
    labelled: Annotated[
        bool | None, Query(description="only labelled windows (true) or unlabelled (false)")
    ] = None,
) -> list[ReviewWindowView]:
    """Windows sent for review, paged as GET /api/v1/events is, by their `id`."""
    return pager.by_id(window, review.listing(session, window, device_id=device, labelled=labelled))


@router.post("/windows/label", operation_id="review-label")
def label(
    audit: AuditedOperatorDep, labels: LabelsBody, session: WriteSessionDep
) -> LabelledWindows:
    """Label windows; each becomes a sample of `dataset`. A window labelled before keeps its
    label. 404 naming the ids that do not exist, and then nothing is labelled."""
    done = review.label(session, labels)
    # Labelling adds samples: nothing stood before.
    audit.changed(None, {"asked": labels, "done": done})
    session.commit()
    return done
