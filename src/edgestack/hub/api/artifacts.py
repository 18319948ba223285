from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse

from edgestack.hub.api.deps import ArtifactReaderDep, HubDep
from edgestack.hub.errors import NotFound

__all__ = ["router"]

router = APIRouter(tags=["artifacts"])


@router.get(
    "/v1/artifacts/{digest}",
    operation_id="artifacts-get",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_artifact(
    _: ArtifactReaderDep,
    hub: HubDep,
    digest: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="sha256 of the bundle")],
) -> FileResponse:
    """A packed bundle by digest; `Range` requests resume an interrupted download."""
    path = hub.bundles.path(digest)
    if not path.is_file():
        raise NotFound(
            f"no bundle with digest {digest} is stored; register it with POST /v1/models"
        )
    return FileResponse(path, media_type="application/octet-stream")
