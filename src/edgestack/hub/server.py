import contextlib
import logging
from types import FrameType

import uvicorn

from edgestack.hub.app import create_app, hub_of
from edgestack.hub.notify import DesiredNotifier
from edgestack.hub.settings import HubSettings

__all__ = ["serve"]

log = logging.getLogger("edgestack.hub")

# Long-polls are answered at once when a stop is asked for, so this only bounds a stuck client.
GRACE_S = 10


def serve(settings: HubSettings) -> None:
    """Run the hub until SIGTERM or SIGINT, then finish the requests under way and stop.

    Raises `StartRefused` before serving anything when another process holds the data
    directory or a newer release made its database."""
    app = create_app(settings)
    hub = hub_of(app)
    # Opened here rather than in the app's lifespan, so a refusal ends the process with its
    # reason instead of a traceback from the ASGI server.
    hub.open_files()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_graceful_shutdown=GRACE_S,
    )
    server = _Server(config, hub.notifier)
    log.info(
        "hub on http://%s:%d, data in %s (%s)",
        settings.host,
        settings.port,
        settings.data_dir,
        settings.environment,
    )
    # uvicorn raises the signal again once it has stopped; a stop asked for is no error.
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
    finally:
        hub.close()


class _Server(uvicorn.Server):
    """A server that answers every waiting long-poll as soon as it is asked to stop,
    rather than holding the stop until each one times out."""

    def __init__(self, config: uvicorn.Config, notifier: DesiredNotifier) -> None:
        super().__init__(config)
        self._notifier = notifier

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._notifier.close()
        super().handle_exit(sig, frame)
