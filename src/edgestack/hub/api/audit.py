"""The audit log of control actions, for admins."""

from typing import Annotated

from fastapi import APIRouter, Query

from edgestack.hub.api.deps import AdminDep, SessionDep, WindowDep
from edgestack.hub.store import audit
from edgestack.protocol import AuditView

__all__ = ["router"]

router = APIRouter(tags=["audit"])


@router.get("/audit", operation_id="audit-list")
def list_audit(
    _: AdminDep,
    session: SessionDep,
    window: WindowDep,
    actor: Annotated[
        str | None, Query(max_length=63, description="only actions of this token's name")
    ] = None,
    action: Annotated[
        str | None, Query(max_length=63, description="only this operation, e.g. twin-patch-desired")
    ] = None,
    target: Annotated[
        str | None, Query(max_length=255, description="only actions on this device or resource")
    ] = None,
) -> list[AuditView]:
    """One page of control actions, oldest first (`order=newest` for newest first): who
    (token name and role), what (operation id, target), when, and the state before and
    after. Every change made through the API with an operator or admin token is here; reads,
    logins and devices' own calls are not."""
    return audit.listing(session, window, actor=actor, action=action, target=target)
