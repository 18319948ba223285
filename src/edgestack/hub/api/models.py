from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from edgestack.bundle import MAX_BUNDLE_BYTES
from edgestack.hub.api.body import read_body
from edgestack.hub.api.deps import (
    AuditedOperatorDep,
    HubDep,
    SessionDep,
    ViewerDep,
    WriteSessionDep,
)
from edgestack.hub.api.paging import KeysDep, PagerDep
from edgestack.hub.store import registry
from edgestack.protocol import ModelView

__all__ = ["router"]

router = APIRouter(tags=["models"])


async def _bundle_bytes(request: Request) -> bytes:
    return await read_body(request, MAX_BUNDLE_BYTES)


BundleBytes = Annotated[bytes, Depends(_bundle_bytes)]
_RAW_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post(
    "/models",
    status_code=201,
    operation_id="models-register",
    openapi_extra=_RAW_BODY,
    responses={
        200: {
            "model": ModelView,
            "description": "the same bundle, or one identical but for when it was made, was "
            "registered before: the version it got then",
        }
    },
)
def register_model(
    audit: AuditedOperatorDep,
    data: BundleBytes,
    hub: HubDep,
    session: WriteSessionDep,
    response: Response,
    digest: Annotated[
        str | None,
        Query(pattern=r"^[0-9a-f]{64}$", description="sha256 the bytes must hash to"),
    ] = None,
) -> ModelView:
    """Register a packed bundle (the body, as application/octet-stream) as the next version
    of its name; the hub sets manifest.version and signs the manifest, so the answer's
    version and digest are those of the signed bundle devices will get.

    201 for a new model version, 200 when the same bytes were registered before, or a bundle
    of the same name, model bytes and manifest but for when it was made, its measured
    footprint and what the hub sets (with the version it got then); 400 for a bundle that
    fails verification.
    """
    view, created = registry.register(
        session,
        hub.bundles,
        hub.keys,
        data,
        ttl=timedelta(days=hub.settings.signature_days),
        expected_digest=digest,
    )
    audit.target = f"{view.name}/{view.version}"
    audit.changed(None, view)
    session.commit()
    if not created:
        response.status_code = 200
    return view


@router.get("/models", operation_id="models-list")
def list_models(
    _: ViewerDep, session: SessionDep, pager: PagerDep, keys: KeysDep
) -> list[ModelView]:
    """One page of the registered model versions, by name and version."""
    return pager.by_key(keys, registry.models(session), _key)


def _key(view: ModelView) -> str:
    # Sorts as (name, version) do: "," before any character of a name, versions padded.
    return f"{view.name},{view.version:019d}"
