from typing import Literal

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="health-check")
async def healthz() -> dict[str, Literal["ok"]]:
    """Answers while the process serves requests; no token needed."""
    return {"status": "ok"}
