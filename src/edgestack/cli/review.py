"""`edgestack windows`: recent windows asked of devices for review, and labelled into a
dataset to learn from."""

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
from edgestack.protocol import MAX_REVIEW_WINDOWS, ReviewWindowView, WindowLabels

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


@app.command()
def ask(
    device_id: Annotated[str, typer.Argument(help="The device to ask.")],
    count: Annotated[
        int,
        typer.Option(min=1, max=MAX_REVIEW_WINDOWS, help="How many windows, least confident."),
    ] = 100,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Ask a device for the recent windows its model was least sure of; it sends them once
    its model has classified as many, and `edgestack windows list` shows them."""
    with connect(hub, admin_token) as client:
        state = call(lambda: client.ask_windows(device_id, count))
    asked = state.send_windows
    assert asked is not None  # what the hub just set
    console.print(
        f"asked {device_id} for {asked.count} windows (request {asked.request_id})",
        highlight=False,
    )


@app.command("list")
def list_windows(
    device: Annotated[str | None, typer.Option(help="Only this device's windows.")] = None,
    unlabelled: Annotated[bool, typer.Option(help="Only windows not labelled yet.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List windows sent for review, oldest first, least confident first within a request."""
    with connect(hub, admin_token) as client:
        rows = call(
            lambda: client.windows(
                device=device, labelled=False if unlabelled else None, limit=limit
            )
        )
    emit(rows, as_json, _listing(rows))


@app.command()
def label(
    ids: Annotated[
        list[int], typer.Argument(help="The windows' ids (see edgestack windows list).")
    ],
    label: Annotated[str, typer.Option(help="Their true label.")],
    dataset: Annotated[str, typer.Option(help="The dataset they join as samples.")],
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give windows their true label; each becomes a sample of the dataset. A window labelled
    before keeps its first label."""
    labels = request(WindowLabels, ids=ids, label=label, dataset=dataset)
    with connect(hub, admin_token) as client:
        done = call(lambda: client.label_windows(labels))
    if as_json:
        print_json(done)
        return
    console.print(
        f"labelled {done.labelled} windows '{label}': {done.samples} new samples in {dataset}",
        highlight=False,
    )


def _listing(rows: list[ReviewWindowView]) -> Listing:
    cells = [
        [
            str(w.id),
            w.device_id,
            w.at.strftime("%Y-%m-%d %H:%M:%S"),
            w.predicted,
            f"{w.confidence:.2f}",
            w.label or "",
            w.dataset or "",
        ]
        for w in rows
    ]
    return Listing(
        ["id", "device", "at", "predicted", "confidence", "label", "dataset"],
        cells,
        hide_first=["dataset", "at"],
    )
