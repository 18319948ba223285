import contextlib
import gc
import logging
import shlex
import socket
import sys
from collections.abc import Callable
from types import FrameType

import uvicorn

from edgestack.hub.app import create_app, hub_of
from edgestack.hub.notify import DesiredNotifier
from edgestack.hub.settings import HubSettings
from edgestack.hub.worker import Worker

__all__ = ["serve"]

log = logging.getLogger("edgestack.hub")

# Long-polls are answered at once when a stop is asked for, so this only bounds a stuck client.
GRACE_S = 10
_GC_THRESHOLDS = (50_000, 20, 10)


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

    workers: list[Worker] = []

    def listening(port: int) -> None:
        # What the hub made to start (modules, routes, models) lives as long as it does:
        # frozen, the collector stops walking it at every full collection. Thousands of
        # devices' connections and long-polls live long too, and collections as often as
        # Python's defaults took half the hub's time at 6,000 devices; requests' garbage
        # goes by reference count, so cycles may wait for fewer, later collections.
        gc.freeze()
        gc.set_threshold(*_GC_THRESHOLDS)
        if settings.jobs_worker:
            # Started once the port is known: the worker reaches the hub through its API.
            workers.append(
                Worker(
                    _url(settings.host, port),
                    settings.admin_token.get_secret_value(),
                    aggregator=(settings.fl_host, settings.fl_port),
                    jobs=settings.jobs,
                    jobs_hub_url=settings.jobs_hub_url,
                )
            )
            workers[0].start()
        log.info(
            "hub on http://%s:%d, data in %s (%s)",
            settings.host,
            port,
            settings.data_dir,
            settings.environment,
        )
        if settings.environment == "development":
            print(_first_run(settings, port), file=sys.stdout, flush=True)

    def stopping() -> None:
        for worker in workers:
            worker.stop_soon()

    server = _Server(config, hub.notifier, listening, stopping)
    # uvicorn raises the signal again once it has stopped; a stop asked for is no error.
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
    finally:
        for worker in workers:
            worker.stop()
        hub.close()


def _first_run(settings: HubSettings, port: int) -> str:
    """What a development hub prints at start: its tokens, an agent command that enrols as
    printed, what to export for the CLI, and where its dashboard is. Production hubs keep
    their tokens to themselves."""
    url = _url(settings.host, port)
    enrol = settings.enrol_token.get_secret_value()
    admin = settings.admin_token.get_secret_value()
    agent = ["edgestack", "agent", "--hub", url, "--token", enrol, "--device-id", "device-1"]
    exports = {"EDGESTACK_HUB_URL": url, "EDGESTACK_ADMIN_TOKEN": admin}
    return "\n".join(
        [
            f"development hub on {url}",
            f"  enrolment token: {enrol}",
            f"  admin token:     {admin}",
            "run an agent (another --device-id for each one):",
            f"  {shlex.join(agent)}",
            "use the CLI from another shell:",
            "  export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in exports.items()),
            "  edgestack devices",
            "open the dashboard in a browser and log in with the admin token:",
            f"  {url}/",
        ]
    )


def _url(host: str, port: int) -> str:
    """Where a process on this machine reaches the hub."""
    # Nothing can connect to a wildcard address; on this machine, loopback reaches it.
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"


class _Server(uvicorn.Server):
    """A server that answers every waiting long-poll as soon as it is asked to stop,
    rather than holding the stop until each one times out."""

    def __init__(
        self,
        config: uvicorn.Config,
        notifier: DesiredNotifier,
        listening: Callable[[int], None],
        stopping: Callable[[], None],
    ) -> None:
        super().__init__(config)
        self._notifier = notifier
        self._listening = listening
        self._stopping = stopping

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        # Told once the port is held: a hub whose port is taken prints no agent command to
        # run against another process, and `--port 0` tells which port it got.
        self._listening(self.servers[0].sockets[0].getsockname()[1])

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # uvicorn ends the process with the signal once it has stopped, before any `finally`.
        self._stopping()
        self._notifier.close()
        super().handle_exit(sig, frame)
