"""The model registry: one row per name and version, the bundle itself kept by digest."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from edgestack.bundle import Bundle, BundleError, BundleStore, Manifest, digest
from edgestack.hub.errors import BadRequest, Conflict, NotFound
from edgestack.hub.store.db import utcnow
from edgestack.hub.store.tables import ModelRow
from edgestack.protocol import BundleRef, ModelView

__all__ = ["models", "register", "resolve"]


def register(
    session: Session, bundles: BundleStore, data: bytes, *, expected_digest: str | None = None
) -> tuple[ModelView, bool]:
    """Verify and register a packed bundle; return its view and whether it is new.

    The same bundle again is no error. Nothing is stored, neither row nor file, for a
    bundle that fails verification or whose name and version are taken by other bytes.
    """
    try:
        bundle = Bundle.unpack(data, expected_digest=expected_digest)
    except BundleError as exc:
        raise BadRequest(str(exc)) from exc
    key = digest(data)
    name, version = bundle.manifest.name, bundle.manifest.version
    existing = session.scalar(
        select(ModelRow).where(ModelRow.name == name, ModelRow.version == version)
    )
    if existing is not None and existing.digest != key:
        raise Conflict(
            f"model '{name}' version {version} is registered with digest {existing.digest}; "
            "bump manifest.version to register different bytes"
        )
    try:
        bundles.put(data, expected_digest=key)
    except BundleError as exc:
        raise BadRequest(str(exc)) from exc
    if existing is not None:
        return _view(existing), False
    row = ModelRow(
        name=name,
        version=version,
        digest=key,
        size_bytes=len(data),
        manifest=bundle.manifest.model_dump(mode="json"),
        registered_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return _view(row), True


def models(session: Session) -> list[ModelView]:
    rows = session.scalars(select(ModelRow).order_by(ModelRow.name, ModelRow.version))
    return [_view(row) for row in rows]


def resolve(session: Session, name: str, version: int | None = None) -> BundleRef:
    """The bundle of `name` at `version`, or at its latest version when none is given."""
    if version is None:
        version = session.scalar(select(func.max(ModelRow.version)).where(ModelRow.name == name))
        if version is None:
            raise NotFound(f"model '{name}' is not registered; register it with POST /v1/models")
    row = session.scalar(select(ModelRow).where(ModelRow.name == name, ModelRow.version == version))
    if row is None:
        known = session.scalars(
            select(ModelRow.version).where(ModelRow.name == name).order_by(ModelRow.version)
        ).all()
        if not known:
            raise NotFound(f"model '{name}' is not registered; register it with POST /v1/models")
        raise NotFound(
            f"model '{name}' has no version {version}; registered versions: "
            f"{', '.join(map(str, known))}"
        )
    return BundleRef(name=row.name, version=row.version, digest=row.digest)


def _view(row: ModelRow) -> ModelView:
    return ModelView(
        name=row.name,
        version=row.version,
        digest=row.digest,
        size_bytes=row.size_bytes,
        registered_at=row.registered_at,
        manifest=Manifest.model_validate(row.manifest),
    )
