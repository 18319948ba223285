from typing import Annotated

from fastapi import APIRouter, Depends, Query

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import DeviceDep, SessionDep, ViewerDep, WindowDep, WriteSessionDep
from edgestack.hub.api.paging import PagerDep
from edgestack.hub.store import samples
from edgestack.protocol import DatasetView, DeviceId, IngestAck, SampleBatch

__all__ = ["router"]

router = APIRouter(tags=["samples"])

SampleBody = Annotated[SampleBatch, Depends(json_body(SampleBatch))]


@router.post("/devices/{device_id}/samples", operation_id="samples-ingest")
def ingest_samples(device_id: DeviceDep, batch: SampleBody, session: WriteSessionDep) -> IngestAck:
    """Store labelled feature windows once; each needs one value per `spec.features`."""
    ack = samples.ingest(session, device_id, batch)
    session.commit()
    return ack


@router.get("/samples", operation_id="samples-list")
def list_samples(
    _: ViewerDep,
    session: SessionDep,
    window: WindowDep,
    pager: PagerDep,
    label: Annotated[
        str | None, Query(max_length=64, description="only samples with this label")
    ] = None,
    device: Annotated[DeviceId | None, Query(description="only this device's samples")] = None,
    dataset: Annotated[
        str | None, Query(max_length=63, description="only the samples of this dataset")
    ] = None,
) -> DatasetView:
    """One page of the collected training set, with the input spec of every sample on it;
    pages as `GET /api/v1/events` does, by the samples' `id`: the ids `relabel` and `removal`
    select by."""
    page = samples.dataset(session, window, label=label, device_id=device, dataset=dataset)
    pager.by_id(window, page.samples)
    return page
