"""`edgestack keys`: the hub's bundle signing keys."""

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
)
from edgestack.protocol import KeyView

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


def _listing(rows: list[KeyView]) -> Listing:
    """Keys as a table; the public key, long and in --json whole, goes first when narrow."""
    cells = [
        [v.key.key_id, "yes" if v.active else "", v.key.endorsed_by or "-", v.key.public_key]
        for v in rows
    ]
    return Listing(["key", "active", "endorsed by", "public key"], cells, hide_first=["public key"])


@app.command("list")
def list_keys(hub: HubOpt = None, admin_token: AdminOpt = None, as_json: JsonOpt = False) -> None:
    """List the hub's signing keys, oldest first; the active one signs new registrations."""
    with connect(hub, admin_token) as client:
        rows = call(client.keys)
    emit(rows, as_json, _listing(rows))


@app.command()
def rotate(hub: HubOpt = None, admin_token: AdminOpt = None, as_json: JsonOpt = False) -> None:
    """Make a new signing key, endorsed by the active one, and sign with it from now on.

    Older keys stay trusted; enrolled agents learn the new key from the next bundle they get."""
    with connect(hub, admin_token) as client:
        rows = call(client.rotate_keys)
    if as_json:
        print_json(rows)
    else:
        console.print(f"signing with key {rows[-1].key.key_id} from now on")
