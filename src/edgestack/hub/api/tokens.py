"""Named API tokens, each with a role: made, listed and revoked by an admin."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import AdminDep, AuditedAdminDep, SessionDep, WriteSessionDep
from edgestack.hub.store import tokens
from edgestack.protocol import TokenCreate, TokenName, TokenSecret, TokenView

__all__ = ["router"]

router = APIRouter(tags=["tokens"])

CreateBody = Annotated[TokenCreate, Depends(json_body(TokenCreate))]
NamePath = Annotated[TokenName, Path(description="the token's name")]


@router.post(
    "/tokens",
    status_code=201,
    operation_id="tokens-create",
    responses={409: {"description": "a token of that name exists, or the name is reserved"}},
)
def create_token(
    audit: AuditedAdminDep, request: CreateBody, session: WriteSessionDep
) -> TokenSecret:
    """Make a named token with a role: a viewer reads, an operator also controls devices,
    models and data, an admin also manages tokens and keys. Its secret is in this answer
    only; the hub keeps a hash."""
    made = tokens.create(session, request, created_by=audit.caller.name)
    audit.target = made.name
    # Never the secret: the log is read by every admin.
    audit.changed(None, TokenView.model_validate(made.model_dump(exclude={"token"})))
    session.commit()
    return made


@router.get("/tokens", operation_id="tokens-list")
def list_tokens(_: AdminDep, session: SessionDep) -> list[TokenView]:
    """Every named token, revoked and expired ones too, by name; never their secrets."""
    return tokens.listing(session)


@router.delete("/tokens/{name}", operation_id="tokens-revoke")
def revoke_token(audit: AuditedAdminDep, name: NamePath, session: WriteSessionDep) -> TokenView:
    """Stop a token working at once, as a bearer token and as a login cookie; it stays listed
    under its name. 409 when it was revoked already."""
    before = tokens.view(tokens.get(session, name))
    after = tokens.view(tokens.revoke(session, name))
    audit.changed(before, after)
    session.commit()
    return after
