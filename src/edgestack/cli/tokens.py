"""`edgestack tokens`: named API tokens with a role, for people and outside applications."""

from datetime import datetime
from typing import Annotated

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
from edgestack.protocol import Role, TokenCreate, TokenView

__all__ = ["app"]

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
