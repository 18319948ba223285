"""The model registry: one row per name and version, the bundle itself kept by digest.

The hub numbers the versions of a name and signs each bundle it registers, so what it
stores and serves is the signed bundle, under that bundle's digest."""

from datetime import timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from edgestack.bundle import Bundle, BundleError, BundleStore, Manifest, digest
from edgestack.hub.errors import BadRequest, NotFound
from edgestack.hub.signing import HubKeys
from edgestack.hub.store.db import utcnow
from edgestack.hub.store.tables import ModelRow
from edgestack.protocol import BundleRef, ModelView

__all__ = ["models", "register", "resolve"]

_SET_BY_HUB = {"version", "key_id", "key_chain", "expires_at", "signature"}
# When the bundle was made, and its footprint: a measurement of the same model bytes, whose
# latencies differ a little every time they are measured.
_REMADE = {"created_at", "footprint"}


def register(
    session: Session,
    bundles: BundleStore,
    keys: HubKeys,
    data: bytes,
    *,
    ttl: timedelta,
    expected_digest: str | None = None,
) -> tuple[ModelView, bool]:
    """Verify a packed bundle, number it the next version of its name, sign it for `ttl`
    and register it; return its view and whether it is new.

    The version in the uploaded manifest is ignored. The same bytes again (or the signed
    bundle the hub made of them) are no error: they answer the version registered before, and
    so does a bundle identical to a version of its name (`_identical`), made again.
    Nothing is stored, neither row nor file, for a bundle that fails verification. Run it
    in a writer session, so two registrations of one name cannot take the same version.
    """
    try:
        bundle = Bundle.unpack(data, expected_digest=expected_digest)
    except BundleError as exc:
        raise BadRequest(str(exc)) from exc
    submitted = digest(data)
    same_bytes = session.scalars(
        select(ModelRow).where(
            or_(ModelRow.submitted_digest == submitted, ModelRow.digest == submitted)
        )
    )
    fresh = [row for row in same_bytes if _fresh(row, ttl)]
    existing = fresh[0] if fresh else _identical(session, bundle.manifest, ttl)
    if existing is not None:
        return _view(existing), False
    name = bundle.manifest.name
    latest = session.scalar(select(func.max(ModelRow.version)).where(ModelRow.name == name))
    numbered = bundle.manifest.model_copy(update={"version": (latest or 0) + 1})
    signed = Bundle(keys.sign(numbered, ttl=ttl), bundle.model).pack()
    key = digest(signed)
    try:
        stored = bundles.put(signed, expected_digest=key)
    except BundleError as exc:
        raise BadRequest(str(exc)) from exc
    row = ModelRow(
        name=name,
        version=numbered.version,
        digest=key,
        submitted_digest=submitted,
        size_bytes=len(signed),
        manifest=stored.manifest.model_dump(mode="json"),
        registered_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return _view(row), True


def _fresh(row: ModelRow, ttl: timedelta) -> bool:
    """Whether `row`'s signature holds for at least half of `ttl` more: one nearer its expiry
    is signed afresh as a new version, which is what registering again is for."""
    expires = Manifest.model_validate(row.manifest).expires_at
    return expires is None or expires > utcnow() + ttl / 2


def _identical(session: Session, manifest: Manifest, ttl: timedelta) -> ModelRow | None:
    """The version of `manifest.name` with the same model bytes and the same manifest but for
    what the hub sets when it registers (`_SET_BY_HUB`) and what making the bundle again
    changes (`_REMADE`), whose signature is `_fresh`: training twice on the same data with the
    same seed makes no new version when the trainer is deterministic."""
    same_model = session.scalars(
        select(ModelRow)
        .where(
            ModelRow.name == manifest.name,
            ModelRow.manifest["model_sha256"].as_string() == manifest.model_sha256,
        )
        .order_by(ModelRow.version)
    )
    content = _content(manifest)
    return next(
        (
            row
            for row in same_model
            if _content(Manifest.model_validate(row.manifest)) == content and _fresh(row, ttl)
        ),
        None,
    )


def _content(manifest: Manifest) -> dict[str, object]:
    # Measured or not is content: a measured model is checked against device profiles.
    measured = manifest.footprint is not None
    return manifest.model_dump(mode="json", exclude=_SET_BY_HUB | _REMADE) | {"measured": measured}


def models(session: Session) -> list[ModelView]:
    rows = session.scalars(select(ModelRow).order_by(ModelRow.name, ModelRow.version))
    return [_view(row) for row in rows]


def resolve(session: Session, name: str, version: int | None = None) -> BundleRef:
    """The bundle of `name` at `version`, or at its latest version when none is given."""
    if version is None:
        version = session.scalar(select(func.max(ModelRow.version)).where(ModelRow.name == name))
        if version is None:
            raise NotFound(
                f"model '{name}' is not registered; register it with POST /api/v1/models"
            )
    row = session.scalar(select(ModelRow).where(ModelRow.name == name, ModelRow.version == version))
    if row is None:
        known = session.scalars(
            select(ModelRow.version).where(ModelRow.name == name).order_by(ModelRow.version)
        ).all()
        if not known:
            raise NotFound(
                f"model '{name}' is not registered; register it with POST /api/v1/models"
            )
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
