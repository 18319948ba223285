"""What one running hub holds: settings, database, bundle store, signing keys, long-poll
notifier."""

import asyncio

from edgestack.bundle import BundleStore
from edgestack.hub.notify import DesiredNotifier
from edgestack.hub.settings import HubSettings
from edgestack.hub.signing import HubKeys
from edgestack.hub.store import Database
from edgestack.hub.store.artifacts import CheckedArtifacts

__all__ = ["HubContext"]


class HubContext:
    """Built with the app; opens its files when the app starts and closes them when it stops."""

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.notifier = DesiredNotifier()
        self._db: Database | None = None
        self._bundles: BundleStore | None = None
        self._keys: HubKeys | None = None
        self._artifacts: CheckedArtifacts | None = None

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

    @property
    def keys(self) -> HubKeys:
        if self._keys is None:
            raise RuntimeError("the hub is not started; run the app inside its lifespan")
        return self._keys

    @property
    def artifacts(self) -> CheckedArtifacts:
        if self._artifacts is None:
            raise RuntimeError("the hub is not started; run the app inside its lifespan")
        return self._artifacts

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        data_dir = self.settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self._db = Database(data_dir / "hub.db")
        self._bundles = BundleStore(data_dir / "artifacts")
        self._keys = HubKeys(data_dir / "keys")
        self._artifacts = CheckedArtifacts(self._bundles)
        self.notifier.bind(loop)

    def close(self) -> None:
        self.notifier.close()
        if self._db is not None:
            self._db.close()
        self._db = None
        self._bundles = None
        self._keys = None
        self._artifacts = None
