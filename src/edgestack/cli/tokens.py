"""`edgestack tokens`: named API tokens with a role, for people and outside applications;
`edgestack audit`: the control actions done with them."""

import json
from datetime import datetime
from typing import Annotated, Any

import typer

from edgestack.cli.common import (
    AdminOpt,
    HubOpt,
    JsonOpt,
    Listing,
    call,
    connect,
    console,
    emit,
    print_json,
    request,
)
from edgestack.protocol import AuditView, Role, TokenCreate, TokenView

__all__ = ["app", "audit"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

NameArg = Annotated[
    str, typer.Argument(help="The token's name: lower-case letters, digits and dashes.")
]


def _when(at: datetime | None) -> str:
    return "-" if at is None else f"{at:%Y-%m-%d %H:%M}"


def _listing(rows: list[TokenView]) -> Listing:
    cells = [
        [
            t.name,
            t.role,
            _when(t.created_at),
            t.created_by,
            _when(t.expires_at),
            _when(t.revoked_at),
        ]
        for t in rows
    ]
    headers = ["name", "role", "created", "by", "expires", "revoked"]
    return Listing(headers, cells, hide_first=["by", "created"])


@app.command()
def create(
    name: NameArg,
    role: Annotated[Role, typer.Option(help="viewer reads; operator also controls; admin all")],
    expires_days: Annotated[
        int | None, typer.Option(help="Days until it stops working; never if left out.")
    ] = None,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a named token with a role and print its secret, shown this once only."""
    asked = request(TokenCreate, name=name, role=role, expires_days=expires_days)
    with connect(hub, admin_token) as client:
        made = call(lambda: client.create_token(asked))
    if as_json:
        print_json(made)
        return
    console.print(f"token '{made.name}' ({made.role}); keep it now, it is not shown again:")
    # Plain print: no wrapping or colour may change what is copied.
    print(made.token)


@app.command("list")
def list_tokens(hub: HubOpt = None, admin_token: AdminOpt = None, as_json: JsonOpt = False) -> None:
    """List the named tokens, revoked and expired ones too, by name; never their secrets."""
    with connect(hub, admin_token) as client:
        rows = call(client.tokens)
    emit(rows, as_json, _listing(rows))


@app.command()
def revoke(
    name: NameArg, hub: HubOpt = None, admin_token: AdminOpt = None, as_json: JsonOpt = False
) -> None:
    """Stop a token working at once; it stays listed, under its name."""
    with connect(hub, admin_token) as client:
        row = call(lambda: client.revoke_token(name))
    if as_json:
        print_json(row)
    else:
        console.print(f"token '{row.name}' revoked", highlight=False)


def audit(
    actor: Annotated[str | None, typer.Option(help="Only what this token's name did.")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this operation, e.g. twin-patch-desired.")
    ] = None,
    device: Annotated[
        str | None,
        typer.Option("--device", "--target", help="Only actions on this device or resource."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="The newest this many.")] = 50,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List control actions, newest first: who, what, on what, when, and what changed."""
    with connect(hub, admin_token) as client:
        rows = call(
            lambda: client.audit(
                actor=actor, action=action, target=device, limit=limit, newest_first=True
            )
        )
    emit(rows, as_json, _audit_listing(rows))


def _audit_listing(rows: list[AuditView]) -> Listing:
    cells = [
        [
            str(a.id),
            f"{a.at:%Y-%m-%d %H:%M:%S}",
            f"{a.actor} ({a.role})",
            a.action,
            a.target or "-",
            _change(a.before, a.after),
        ]
        for a in rows
    ]
    headers = ["id", "at", "who", "action", "target", "change"]
    return Listing(headers, cells, wrap=["change"], hide_first=["id"])


def _change(before: Any, after: Any) -> str:
    """What an action changed, in a line: the top-level fields that differ, when both sides
    have fields; `--json` has the whole of both."""
    if isinstance(before, dict) and isinstance(after, dict):
        fields = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        return (
            "; ".join(f"{k}: {_short(before.get(k))} -> {_short(after.get(k))}" for k in fields)
            or "nothing"
        )
    if before is None:
        return "-" if after is None else "created"
    return "removed" if after is None else "changed (--json shows how)"


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
