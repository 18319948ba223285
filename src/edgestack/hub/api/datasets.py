from collections.abc import Callable
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import (
    Audit,
    AuditedOperatorDep,
    HubDep,
    SessionDep,
    ViewerDep,
    WriteSessionDep,
)
from edgestack.hub.api.paging import KeysDep, PagerDep
from edgestack.hub.context import HubContext
from edgestack.hub.store import curation, datasets, samples
from edgestack.protocol import (
    INT64_MAX,
    Curated,
    DatasetDetail,
    DatasetName,
    DatasetSummary,
    DatasetVersion,
    IngestAck,
    Relabel,
    SampleImport,
    SampleSelection,
)

__all__ = ["router"]

router = APIRouter(tags=["datasets"])

ImportBody = Annotated[SampleImport, Depends(json_body(SampleImport))]
RelabelBody = Annotated[Relabel, Depends(json_body(Relabel))]
SelectionBody = Annotated[SampleSelection, Depends(json_body(SampleSelection))]
NamePath = Annotated[DatasetName, Path(description="the dataset's name")]
VersionNumber = Annotated[int, Path(ge=1, le=INT64_MAX, description="a frozen version, from 1")]


def _root(hub: HubDep) -> FilePath:
    return hub.settings.data_dir / "datasets"


RootDep = Annotated[FilePath, Depends(_root)]


@router.get("/datasets", operation_id="datasets-list")
def list_datasets(
    _: ViewerDep, session: SessionDep, pager: PagerDep, keys: KeysDep
) -> list[DatasetSummary]:
    """One page of the datasets holding samples, by name, with their counts and versions."""
    return pager.by_key(keys, datasets.summaries(session), lambda summary: summary.name)


@router.get("/datasets/{name}", operation_id="datasets-get")
def get_dataset(_: ViewerDep, session: SessionDep, name: NamePath) -> DatasetDetail:
    """What a dataset holds now, and each frozen version's counts by label, device and split."""
    return datasets.detail(session, name)


@router.post("/datasets/{name}/versions", status_code=201, operation_id="datasets-freeze")
def freeze_dataset(
    audit: AuditedOperatorDep,
    hub: HubDep,
    session: WriteSessionDep,
    root: RootDep,
    name: NamePath,
    spec: Annotated[
        str | None,
        Query(
            max_length=64,
            description="the input spec fingerprint to freeze; needed when samples mix specs",
        ),
    ] = None,
) -> DatasetVersion:
    """Freeze every sample the dataset holds now as its next version, a Parquet file.

    404 for a dataset without samples, 409 when its samples mix input specs and no `spec`
    says which to freeze.
    """
    with hub.freezing:
        version = _frozen(hub, session, root, name, spec)
        audit.changed(None, version)
        session.commit()
    return version


@router.get(
    "/datasets/{name}/versions/{version}/parquet",
    operation_id="datasets-export",
    response_class=FileResponse,
    responses={200: {"content": {"application/vnd.apache.parquet": {}}}},
)
def export_dataset(
    _: ViewerDep, session: SessionDep, root: RootDep, name: NamePath, version: VersionNumber
) -> FileResponse:
    """A frozen version as Parquet: device, at, label, split, spec, then one float32 column
    per feature, with the input spec as JSON under the schema metadata key `edgestack.spec`."""
    path = datasets.parquet(session, root, name, version)
    return FileResponse(
        path, media_type="application/vnd.apache.parquet", filename=f"{name}-v{version}.parquet"
    )


@router.post("/datasets/{name}/samples", operation_id="datasets-import")
def import_samples(
    audit: AuditedOperatorDep, session: WriteSessionDep, name: NamePath, body: ImportBody
) -> IngestAck:
    """Add labelled feature rows recorded elsewhere; a batch id sent again is stored once."""
    ack = samples.store(session, body.device_id, name, body.batch_id, body.spec, body.samples)
    audit.changed(None, ack)
    session.commit()
    return ack


@router.post("/datasets/{name}/relabel", status_code=201, operation_id="datasets-relabel")
def relabel_samples(
    audit: AuditedOperatorDep,
    hub: HubDep,
    session: WriteSessionDep,
    root: RootDep,
    name: NamePath,
    body: RelabelBody,
) -> Curated:
    """Give the samples the body selects another label and freeze the dataset's next version;
    the versions before it keep the labels they had.

    404 for a dataset without samples, 422 for a body that selects nothing or matches no
    sample, 409 when the samples it matches are of several input specs and no `spec` says
    which.
    """
    with hub.freezing:
        return _curated(
            audit, hub, session, root, name, lambda: curation.relabel(session, name, body)
        )


@router.post("/datasets/{name}/removal", status_code=201, operation_id="datasets-remove")
def remove_samples(
    audit: AuditedOperatorDep,
    hub: HubDep,
    session: WriteSessionDep,
    root: RootDep,
    name: NamePath,
    body: SelectionBody,
) -> Curated:
    """Remove the samples the body selects and freeze the dataset's next version; the
    versions before it keep them.

    404 for a dataset without samples, 422 for a body that selects nothing or matches no
    sample, 409 when the samples it matches are of several input specs and no `spec` says
    which, or when none of their spec would be left.
    """
    with hub.freezing:
        return _curated(
            audit, hub, session, root, name, lambda: curation.remove(session, name, body)
        )


def _curated(
    audit: Audit,
    hub: HubContext,
    session: Session,
    root: FilePath,
    name: str,
    change: Callable[[], tuple[str, int]],
) -> Curated:
    """Make `change` and freeze the version it names. The change commits with its audit
    row at once, and the file is written from a read snapshot after it, as any freeze is: a
    large dataset's file would otherwise hold the write lock, and every device's upload
    waiting on it, while it is written. Under `hub.freezing`, no other version is frozen in
    between; should the freeze fail, the change stands and the next freeze holds it."""
    before = datasets.detail(session, name).counts
    spec, changed = change()
    audit.changed(before, {"changed": changed, "spec": spec})
    session.commit()
    version = _frozen(hub, session, root, name, spec)
    session.commit()
    return Curated(changed=changed, version=version)


def _frozen(
    hub: HubContext, session: Session, root: FilePath, name: str, spec: str | None
) -> DatasetVersion:
    """Freeze `name`'s next version, recorded in `session` (not committed). The file is
    written from a read snapshot, so samples keep arriving meanwhile; only recording the
    version takes the write lock, when the write session first writes."""
    with hub.db.session() as snapshot:
        row = datasets.freeze(snapshot, root, name, spec)
    return datasets.record(session, row)
