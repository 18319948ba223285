"""`edgestack webhooks`: have the hub POST events to a URL, signed, and see how that went."""

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
from edgestack.protocol import DeliveryView, WebhookRequest, WebhookView

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

WebhookArg = Annotated[int, typer.Argument(min=1, help="The webhook's id (webhooks list).")]


@app.command()
def add(
    url: Annotated[str, typer.Argument(help="Where to POST the events: http:// or https://.")],
    device: Annotated[str | None, typer.Option(help="Only this device's events.")] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(help="Only events of devices carrying this tag, key=value; repeat for all."),
    ] = None,
    kind: Annotated[
        list[str] | None, typer.Option(help="Only events of this kind; repeat for several.")
    ] = None,
    severity: Annotated[
        str | None, typer.Option(help="Only events this bad or worse: info, warning, critical.")
    ] = None,
    description: Annotated[str, typer.Option(help="What it is for.")] = "",
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Subscribe URL to the events stored from now on that the options take (all when none).
    Prints the signing secret, shown this once: the receiver checks each delivery with it."""
    wanted = request(
        WebhookRequest,
        url=url,
        device=device,
        tag=tag or [],
        kind=kind or [],
        severity=severity,
        description=description,
    )
    with connect(hub, admin_token) as client:
        view = call(lambda: client.add_webhook(wanted))
    if as_json:
        print_json(view)
    else:
        console.print(f"webhook {view.id} delivers to {view.url}")
        console.print(f"signing secret, shown this once: {view.secret}", soft_wrap=True)


@app.command("list")
def list_webhooks(
    hub: HubOpt = None, admin_token: AdminOpt = None, as_json: JsonOpt = False
) -> None:
    """List the webhooks with their filters and the last event id each has handled."""
    with connect(hub, admin_token) as client:
        rows = call(client.webhooks)
    emit(rows, as_json, _webhooks_listing(rows))


@app.command()
def remove(webhook_id: WebhookArg, hub: HubOpt = None, admin_token: AdminOpt = None) -> None:
    """Stop delivering to a webhook and forget it with its delivery log."""
    with connect(hub, admin_token) as client:
        call(lambda: client.remove_webhook(webhook_id))
    console.print(f"webhook {webhook_id} removed")


@app.command()
def deliveries(
    webhook_id: WebhookArg,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="The newest this many.")] = 100,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List a webhook's newest delivery attempts, oldest first: each event's attempts, the
    receiver's answer or the error, and when the next attempt goes."""
    with connect(hub, admin_token) as client:
        rows = call(lambda: client.deliveries(webhook_id, newest_first=True, limit=limit))
    rows.reverse()
    emit(rows, as_json, _deliveries_listing(rows))


def _webhooks_listing(rows: list[WebhookView]) -> Listing:
    cells = [
        [
            str(w.id),
            w.url,
            " ".join(
                [*(["device=" + w.device] if w.device else []), *w.tag, *w.kind]
                + ([f"severity>={w.severity}"] if w.severity else [])
            )
            or "every event",
            str(w.delivered_id),
            w.description,
        ]
        for w in rows
    ]
    return Listing(
        ["id", "url", "filters", "handled to", "description"],
        cells,
        wrap=["url", "filters", "description"],
        hide_first=["description", "handled to"],
    )


def _deliveries_listing(rows: list[DeliveryView]) -> Listing:
    cells = [
        [
            str(d.event_id),
            str(d.attempt),
            d.at.strftime("%H:%M:%S"),
            d.outcome,
            str(d.status_code) if d.status_code is not None else "-",
            f"{d.duration_ms:.0f} ms",
            d.next_attempt_at.strftime("%H:%M:%S") if d.next_attempt_at else "-",
            d.error or "",
        ]
        for d in rows
    ]
    return Listing(
        ["event", "attempt", "at", "outcome", "status", "took", "next", "error"],
        cells,
        wrap=["error"],
        hide_first=["took", "next"],
    )
