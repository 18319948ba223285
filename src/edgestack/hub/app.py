import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from edgestack.hub.api import (
    API_PREFIX,
    LEGACY_PREFIX,
    ROOT_ROUTERS,
    ROUTERS,
    install_problem_handlers,
)
from edgestack.hub.api.answers import document_answers
from edgestack.hub.api.body import document_bodies
from edgestack.hub.api.deps import check_protocol
from edgestack.hub.api.docs import install_docs
from edgestack.hub.api.nul import refuse_nul_in_url
from edgestack.hub.bridge import Bridge
from edgestack.hub.context import HubContext
from edgestack.hub.controller import Controller
from edgestack.hub.settings import HubSettings
from edgestack.hub.ui import install_dashboard
from edgestack.hub.webhooks import Deliverer

__all__ = ["create_app", "hub_of"]


def create_app(settings: HubSettings) -> FastAPI:
    """The hub as an ASGI app. Its database and files open when the app starts (its
    lifespan) and close when it stops; nothing is touched before.

        app = create_app(HubSettings(data_dir=Path("hub-data")))
        uvicorn.run(app)   # any ASGI server; `serve` adds prompt stops with long-polls waiting
    """
    hub = HubContext(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub.open(asyncio.get_running_loop())
        controller = Controller(hub, settings.control_tick_s)
        ticking = asyncio.create_task(controller.run(), name="controller")
        deliverer = Deliverer(hub)
        delivering = asyncio.create_task(deliverer.run(), name="webhooks")
        hearing = asyncio.create_task(hub.hear_replicas(), name="replicas")
        running = [ticking, delivering]
        bridge = Bridge(hub) if settings.broker_url else None
        if bridge is not None:
            hub.on_enrol.append(bridge.enrolled)
            running.append(asyncio.create_task(bridge.run(), name="mqtt-bridge"))
        try:
            yield
        finally:
            controller.stop()
            deliverer.stop()
            if bridge is not None:
                bridge.stop()
                hub.on_enrol.remove(bridge.enrolled)
            hearing.cancel()
            await asyncio.gather(*running)
            await asyncio.gather(hearing, return_exceptions=True)
            hub.close()

    app = FastAPI(
        title="edgestack hub",
        summary="Control plane of an edgestack fleet: enrolment, twins, ingestion, "
        "model registry, deployments, rollouts.",
        lifespan=lifespan,
        dependencies=[Depends(check_protocol), Depends(refuse_nul_in_url)],
        # Served by `install_docs` from the hub's own files; FastAPI's pages load a CDN's.
        docs_url=None,
        redoc_url=None,
    )
    app.state.hub = hub
    install_problem_handlers(app)
    for router in ROOT_ROUTERS:
        app.include_router(router)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    for router in ROUTERS:
        app.include_router(router, prefix=LEGACY_PREFIX, include_in_schema=False)
    document_bodies(app, API_PREFIX, ROUTERS)
    document_answers(app, API_PREFIX, ROUTERS)
    install_docs(app)
    install_dashboard(app)
    return app


def hub_of(app: FastAPI) -> HubContext:
    """The running state of an app made by `create_app`."""
    hub: HubContext = app.state.hub
    return hub
