from fastapi import APIRouter

from edgestack.hub.api.deps import ViewerDep
from edgestack.profiles import PROFILES
from edgestack.protocol import ProfileView

__all__ = ["router"]

router = APIRouter(tags=["profiles"])


@router.get("/profiles", operation_id="profiles-list")
def list_profiles(_: ViewerDep) -> list[ProfileView]:
    """The device profiles, smallest first: the budgets a bundle's footprint is checked
    against when it is deployed, and the names a device's `desired.profile` may take."""
    return list(PROFILES.values())
