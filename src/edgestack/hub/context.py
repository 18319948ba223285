"""What one running hub holds: settings, database, bundle store, long-poll notifier."""

import asyncio

from edgestack.bundle import BundleStore
from edgestack.hub.notify import DesiredNotifier
from edgestack.hub.settings import HubSettings
from edgestack.hub.store import Database

__all__ = ["HubContext"]


class HubContext:
    """Built with the app; opens its files when the app starts and closes them when it stops."""

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.notifier = DesiredNotifier()
        self._db: Database | None = None
        self._bundles: BundleStore | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            raise RuntimeError("the hub is not started; run the app inside its lifespan")
        return self._db

    @property
    def bundles(self) -> BundleStore:
        if self._bundles is None:
            raise RuntimeError("the hub is not started; run the app inside its lifespan")
        return self._bundles

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        data_dir = self.settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self._db = Database(data_dir / "hub.db")
        self._bundles = BundleStore(data_dir / "artifacts")
        self.notifier.bind(loop)

    def close(self) -> None:
        self.notifier.close()
        if self._db is not None:
            self._db.close()
        self._db = None
        self._bundles = None
