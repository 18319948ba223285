"""`edgestack watch`: the fleet live in the terminal: each device as it reports, and the
events and alerts as they arrive, redrawn in place until Ctrl-C."""

import time
from collections import deque
from functools import partial
from typing import Annotated

import typer
from rich.console import Group
from rich.live import Live

from edgestack.cli.common import AdminOpt, HubOpt, call, connect, console
from edgestack.cli.fleet import devices_listing, events_listing
from edgestack.client import HubClient
from edgestack.protocol import EventView

__all__ = ["watch"]

_EVENTS = 12  # the newest events shown under the devices


def watch(
    every: Annotated[float, typer.Option(min=0.2, help="Seconds between redraws.")] = 1.0,
    seconds: Annotated[
        float, typer.Option(min=0, help="Stop after this long; 0 watches until Ctrl-C.")
    ] = 0.0,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Watch the fleet: every device's status, model, latency, drift and counts, and the
    newest events and alerts as they arrive."""
    newest: deque[EventView] = deque(maxlen=_EVENTS)
    until = time.monotonic() + seconds if seconds else None
    with connect(hub, admin_token) as client:
        newest.extend(reversed(call(lambda: client.events(newest_first=True, limit=_EVENTS))))
        try:
            with Live(_view(client, newest), console=console, auto_refresh=False) as live:
                while until is None or time.monotonic() < until:
                    time.sleep(every)
                    after = newest[-1].id if newest else 0
                    newest.extend(call(partial(client.events, after_id=after, limit=_EVENTS)))
                    live.update(_view(client, newest), refresh=True)
        except KeyboardInterrupt:
            return


def _view(client: HubClient, newest: deque[EventView]) -> Group:
    devices = call(client.devices)
    return Group(
        devices_listing(devices).render(),
        events_listing(list(reversed(newest))).render(),
    )
