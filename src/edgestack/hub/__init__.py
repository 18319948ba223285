"""The control plane of a fleet: enrolment, device twins, ingestion, the model registry
and deployments, as one FastAPI app over SQLite.

    settings = HubSettings(data_dir=Path("hub-data"))   # env EDGESTACK_HUB_*, EDGESTACK_*_TOKEN
    serve(settings)                                      # or create_app(settings) for ASGI
"""

from edgestack.hub.app import create_app
from edgestack.hub.datadir import migrate
from edgestack.hub.server import serve
from edgestack.hub.settings import HubSettings

__all__ = ["HubSettings", "create_app", "migrate", "serve"]
