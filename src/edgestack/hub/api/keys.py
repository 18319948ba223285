from fastapi import APIRouter

from edgestack.hub.api.deps import AuditedAdminDep, HubDep, ViewerDep, WriteSessionDep
from edgestack.protocol import KeyView

__all__ = ["router"]

router = APIRouter(tags=["keys"])


def _views(hub: HubDep) -> list[KeyView]:
    keys = hub.keys.public()
    return [KeyView(key=key, active=key is keys[-1]) for key in keys]


@router.get("/keys", operation_id="keys-list")
def list_keys(_: ViewerDep, hub: HubDep) -> list[KeyView]:
    """The hub's bundle signing keys, oldest first; the active one signs new registrations."""
    return _views(hub)


@router.post("/keys/rotate", operation_id="keys-rotate")
def rotate_keys(audit: AuditedAdminDep, hub: HubDep, session: WriteSessionDep) -> list[KeyView]:
    """Make a new signing key, endorsed by the active one, and sign with it from now on.

    The older keys stay trusted: bundles they signed still verify, and a device that pinned
    one learns the new key from the endorsed key chain in the next bundle it gets. Devices
    enrolled from now on pin every key.
    """
    before = _views(hub)
    hub.keys.rotate()
    after = _views(hub)
    audit.changed(before, after)
    # Commits the audit row alone: the keys live in files, not in the database.
    session.commit()
    return after
