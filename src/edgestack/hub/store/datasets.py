"""Named datasets of samples, and their frozen versions written as Parquet files.

A dataset exists once it holds a sample. Freezing it takes every sample it holds now
into the next version, written once and never changed: samples arriving later go to
later versions. A version holds samples of one input spec, since windows of different
specs are different columns; a dataset that mixes specs is frozen one spec at a time.
"""

from pathlib import Path

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from edgestack.bundle import InputSpec
from edgestack.dataset import COLUMNS, write_dataset
from edgestack.hub.errors import Conflict, NotFound, Unprocessable
from edgestack.hub.store.db import utcnow
from edgestack.hub.store.tables import DatasetVersionRow, SampleRow, SpecRow
from edgestack.protocol import (
    DatasetDetail,
    DatasetSummary,
    DatasetVersion,
    SampleCounts,
    slug,
)

__all__ = ["detail", "freeze", "parquet", "record", "summaries"]


def summaries(session: Session) -> list[DatasetSummary]:
    """Every dataset by name, with what it holds now and its versions."""
    counts = _counts(session)
    versions = {
        name: (n, latest)
        for name, n, latest in session.execute(
            select(
                DatasetVersionRow.dataset,
                func.count(),
                func.max(DatasetVersionRow.version),
            ).group_by(DatasetVersionRow.dataset)
        )
    }
    return [
        DatasetSummary(
            name=name,
            counts=counts[name],
            versions=versions.get(name, (0, None))[0],
            latest=versions.get(name, (0, None))[1],
        )
        for name in sorted(counts)
    ]


def detail(session: Session, name: str) -> DatasetDetail:
    """What `name` holds now, its versions oldest first, and every spec either refers to."""
    counts = _counts(session, SampleRow.dataset == name).get(name)
    if counts is None:
        raise _no_dataset(name)
    versions = _versions(session, name)
    fingerprints = {v.spec for v in versions} | set(
        session.scalars(select(SampleRow.spec).where(SampleRow.dataset == name).distinct())
    )
    specs = session.scalars(select(SpecRow).where(SpecRow.fingerprint.in_(fingerprints)))
    return DatasetDetail(
        name=name,
        counts=counts,
        specs={row.fingerprint: InputSpec.model_validate(row.spec) for row in specs},
        versions=versions,
    )


def freeze(session: Session, root: Path, name: str, spec: str | None = None) -> DatasetVersionRow:
    """Write every sample `name` holds in `session`'s snapshot, of `spec` (needed only when it
    holds several), to `root` as its next version; return the row that records it, for
    `record` to add.

    Only reads: run it in a read session, so samples keep arriving while the file is written,
    and `record` the row in a write session afterwards. Freezes of one hub run one at a time,
    since the next version's number is chosen here.
    """
    present = {
        fingerprint: last_id
        for fingerprint, last_id in session.execute(
            select(SampleRow.spec, func.max(SampleRow.id))
            .where(SampleRow.dataset == name)
            .group_by(SampleRow.spec)
        )
    }
    if not present:
        raise _no_dataset(name)
    if spec is None:
        if len(present) > 1:
            raise Conflict(
                f"dataset '{name}' mixes samples of {len(present)} input specs "
                f"({', '.join(sorted(present))}) and a version holds one; freeze them one "
                "at a time with ?spec=<fingerprint>"
            )
        (spec,) = present
    elif spec not in present:
        raise Unprocessable(
            f"query.spec: dataset '{name}' has no samples of spec '{spec}'; "
            f"give one of {', '.join(sorted(present))}"
        )
    spec_row = session.get(SpecRow, spec)
    assert spec_row is not None, "every sample's spec is stored with it"
    input_spec = InputSpec.model_validate(spec_row.spec)
    clash = sorted(set(input_spec.features) & set(COLUMNS))
    if clash:
        raise Conflict(
            f"spec '{spec}' names features {clash}, which are columns of every version "
            f"({', '.join(COLUMNS)}); rename those features and import the samples again"
        )
    chosen = (SampleRow.dataset == name, SampleRow.spec == spec, SampleRow.id <= present[spec])
    latest = session.scalar(
        select(func.max(DatasetVersionRow.version)).where(DatasetVersionRow.dataset == name)
    )
    version = (latest or 0) + 1
    file = f"{_folder(name)}/v{version}.parquet"
    rows = session.execute(
        select(
            SampleRow.device_id, SampleRow.at, SampleRow.label, SampleRow.split, SampleRow.features
        )
        .where(*chosen)
        .order_by(SampleRow.id)
    )
    write_dataset(root / file, input_spec, spec, rows)
    return DatasetVersionRow(
        dataset=name,
        version=version,
        spec=spec,
        last_sample_id=present[spec],
        frozen_at=utcnow(),
        counts=_counts(session, *chosen)[name].model_dump(mode="json"),
        file=file,
    )


def record(session: Session, version: DatasetVersionRow) -> DatasetVersion:
    """Record a version `freeze` wrote."""
    session.add(version)
    session.flush()
    return _view(version)


def parquet(session: Session, root: Path, name: str, version: int) -> Path:
    """The Parquet file of version `version` of `name`."""
    file = session.scalar(
        select(DatasetVersionRow.file).where(
            DatasetVersionRow.dataset == name, DatasetVersionRow.version == version
        )
    )
    if file is None:
        known = [v.version for v in _versions(session, name)]
        if known:
            raise NotFound(
                f"dataset '{name}' has no version {version}; its versions: "
                f"{', '.join(map(str, known))}"
            )
        detail(session, name)  # raises when the dataset itself is unknown
        raise NotFound(
            f"dataset '{name}' has no versions yet; freeze one with "
            f"POST /api/v1/datasets/{name}/versions"
        )
    return root / file


def _no_dataset(name: str) -> NotFound:
    return NotFound(
        f"no dataset '{name}': it holds no samples; collect into it (Collection.dataset) "
        f"or import some with POST /api/v1/datasets/{name}/samples"
    )


def _counts(session: Session, *where: ColumnElement[bool]) -> dict[str, SampleCounts]:
    keys = (SampleRow.dataset, SampleRow.label, SampleRow.device_id, SampleRow.split)
    query = select(*keys, func.count()).where(*where).group_by(*keys).order_by(*keys)
    counts: dict[str, SampleCounts] = {}
    for dataset, label, device, split, n in session.execute(query):
        c = counts.setdefault(dataset, SampleCounts())
        c.total += n
        c.labels[label] = c.labels.get(label, 0) + n
        c.devices[device] = c.devices.get(device, 0) + n
        c.splits[split] = c.splits.get(split, 0) + n
    return counts


def _versions(session: Session, name: str) -> list[DatasetVersion]:
    rows = session.scalars(
        select(DatasetVersionRow)
        .where(DatasetVersionRow.dataset == name)
        .order_by(DatasetVersionRow.version)
    )
    return [_view(row) for row in rows]


def _view(row: DatasetVersionRow) -> DatasetVersion:
    return DatasetVersion(
        version=row.version,
        frozen_at=row.frozen_at,
        spec=row.spec,
        counts=SampleCounts.model_validate(row.counts),
    )


def _folder(name: str) -> str:
    """Where the versions of dataset `name` are kept: its name when that is a file name, else
    its slug under `_named/`, where no name that is a file name can lead (none starts with
    `_`), so two datasets never share a folder."""
    return name if slug(name) == name else f"_named/{slug(name)}"
