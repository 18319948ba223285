import pathlib
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse

from edgestack.hub.api.deps import ArtifactReaderDep, HubDep
from edgestack.hub.context import HubContext
from edgestack.hub.errors import NotFound, Unavailable
from edgestack.hub.store import events

__all__ = ["checked_bundle", "router"]

router = APIRouter(tags=["artifacts"])


@router.get(
    "/artifacts/{digest}",
    operation_id="artifacts-get",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        503: {"description": "the stored bundle no longer matches its digest"},
    },
)
def get_artifact(
    _: ArtifactReaderDep,
    hub: HubDep,
    digest: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="sha256 of the bundle")],
) -> FileResponse:
    """A packed bundle by digest; `Range` requests resume an interrupted download.

    The file is checked against its digest before it is served (again only once it
    changed on disk). One that no longer matches is never served: the answer is 503 with
    Retry-After, and the hub raises a `store_corrupt` event the first time it finds it.
    """
    # A sync route: FastAPI runs it in a worker thread, so hashing stays off the event loop.
    return FileResponse(checked_bundle(hub, digest), media_type="application/octet-stream")


def checked_bundle(hub: HubContext, digest: str) -> pathlib.Path:
    """Where the stored bundle `digest` is, once its file is checked against the digest;
    `NotFound` when none is stored, `Unavailable` (raising a `store_corrupt` event the first
    time) when the file no longer matches. Blocking: it hashes."""
    try:
        verdict = hub.artifacts.check(digest)
    except FileNotFoundError:
        raise NotFound(
            f"no bundle with digest {digest} is stored; register it with POST /api/v1/models"
        ) from None
    if not verdict.sound:
        problem = (
            f"bundle {digest} is corrupt on the hub's disk: {verdict.path.name} in its "
            "artifact store no longer hashes to its digest"
        )
        if verdict.fresh:
            with hub.db.writer() as session:
                events.record(session, "store_corrupt", problem, severity="critical")
                session.commit()
        raise Unavailable(
            f"{problem}; the hub operator must restore that file from a backup, or register "
            "the model again and deploy the new version"
        )
    return verdict.path
