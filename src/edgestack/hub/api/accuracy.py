from typing import Annotated

from fastapi import APIRouter, Query

from edgestack.bundle import Name
from edgestack.hub.api.deps import SessionDep, ViewerDep
from edgestack.hub.api.paging import KeysDep, PagerDep
from edgestack.hub.store import feedback
from edgestack.protocol import AccuracyView, DeviceId

__all__ = ["router"]

router = APIRouter(tags=["accuracy"])


@router.get("/accuracy", operation_id="accuracy-list")
def list_accuracy(
    _: ViewerDep,
    session: SessionDep,
    pager: PagerDep,
    keys: KeysDep,
    device: Annotated[DeviceId | None, Query(description="only this device")] = None,
    model: Annotated[Name | None, Query(description="only this model's versions")] = None,
) -> list[AccuracyView]:
    """Per device and model version it ran: accuracy on the windows feedback labelled, and
    accuracy estimated from its calibrated confidences over every window it reported, side by
    side; one page, by device and bundle digest."""
    views = feedback.accuracy(session, device_id=device, model=model)
    # "," sorts before any character of a device id, so the key sorts as (device, digest).
    return pager.by_key(keys, views, lambda view: f"{view.device_id},{view.bundle_digest}")
