"""The cloud tier of joint inference: the hub answers windows devices offload to it with the
bundles it holds, as an edge node answers those sent to it."""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.concurrency import run_in_threadpool

from edgestack.hub.api.artifacts import checked_bundle
from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import HubDep, OffloaderDep
from edgestack.hub.context import HubContext
from edgestack.hub.errors import Forbidden
from edgestack.hub.store import devices
from edgestack.protocol import BundleRef, InferenceAnswer, InferenceRequest
from edgestack.serving import refusal

__all__ = ["router"]

router = APIRouter(tags=["inference"])

InferenceBody = Annotated[InferenceRequest, Depends(json_body(InferenceRequest))]


@router.post(
    "/infer",
    operation_id="inference-answer",
    responses={503: {"description": "the stored bundle no longer matches its digest"}},
)
async def infer(caller: OffloaderDep, request: InferenceBody, hub: HubDep) -> InferenceAnswer:
    """Answer the request's rows with the bundle it names, as that bundle's own predictor
    would (on CUDA where ONNX Runtime has it); the answer's tier is `cloud`.

    A device token may ask for the model its desired state's offload policy names, and no
    other; an operator, for any bundle the hub holds. The first request for a bundle loads
    it, verified as a device verifies one. Like a read, an answer changes nothing on the
    hub, so no audit row is written: a device offloads many windows a minute, and the log
    is for what changes the fleet.

    404 for a bundle the hub does not hold, 409 for one it cannot serve (a microcontroller's
    C source, say), 422 for rows the model does not take, naming the field.
    """
    if isinstance(caller, str):
        await run_in_threadpool(_check_offloads, hub, caller, request.model)

    async def stored(ref: BundleRef) -> bytes:
        path = await run_in_threadpool(checked_bundle, hub, ref.digest)
        return await asyncio.to_thread(path.read_bytes)

    try:
        return await hub.serving.answer(request, stored)
    except ValueError as exc:
        refused = refusal(exc)
        if refused is None:
            raise
        raise HTTPException(*refused) from None


def _check_offloads(hub: HubContext, device_id: str, model: BundleRef) -> None:
    with hub.db.session() as session:
        policy = devices.desired(session, device_id).offload
    if policy is None or policy.model != model:
        named = "none" if policy is None else f"{policy.model.name} v{policy.model.version}"
        raise Forbidden(
            f"model: device '{device_id}' may offload only to the model its offload policy "
            f"names ({named}); set the policy's model (PATCH /api/v1/devices/{device_id}/"
            "desired) or ask with an operator's token"
        )
