"""What one running hub holds: settings, data directory, database, bundle store, signing
keys, the models it serves as the cloud tier, long-poll notifier, and the counts of logins
and enrolments by address."""

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Iterable
from contextlib import ExitStack

from sqlalchemy.exc import SQLAlchemyError

from edgestack.bundle import BundleStore, TrustedKeys
from edgestack.hub import datadir
from edgestack.hub.devicetokens import DeviceTokens
from edgestack.hub.ingest import GroupCommit
from edgestack.hub.notify import DesiredChannel, DesiredNotifier
from edgestack.hub.ratelimit import SlidingWindow
from edgestack.hub.settings import HubSettings
from edgestack.hub.signing import HubKeys
from edgestack.hub.store import Database, jobs, leases
from edgestack.hub.store.artifacts import CheckedArtifacts
from edgestack.hub.store.db import masked
from edgestack.serving import Answering, ModelServer

__all__ = ["HubContext"]

log = logging.getLogger("edgestack.hub")


class HubContext:
    """Built with the app; opens its files when the app starts and closes them when it stops."""

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.notifier = DesiredNotifier()
        # Who this process is to the other replicas on its database, for leases.
        self.holder = leases.holder_id()
        # Replicas on one database learn of another's enrolments only from the database, so
        # there every call looks its token up: a revoked token must fail at once everywhere.
        # Alone, the hub makes every token change itself (enrolments forget theirs), and the
        # age bound only covers a database changed under it.
        shared = settings.database_url is not None and datadir.shared(settings.database_url)
        self.device_tokens = DeviceTokens(ttl_s=0.0 if shared else 600.0)
        self.login_failures = SlidingWindow(settings.login_failures, settings.login_window_s)
        self.enrolments = SlidingWindow(settings.enrol_attempts, settings.enrol_window_s)
        # One dataset freeze at a time, since each chooses the next version's number.
        self.freezing = threading.Lock()
        # Called, from any thread, with each device that enrolled once it is committed.
        self.on_enrol: list[Callable[[str], None]] = []
        self._db: Database | None = None
        self._bundles: BundleStore | None = None
        self._held = ExitStack()
        self._keys: HubKeys | None = None
        self._artifacts: CheckedArtifacts | None = None
        self._serving: Answering | None = None
        self._channel: DesiredChannel | None = None
        self._writes: GroupCommit | None = None
        self._reads: GroupCommit | None = None

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

    @property
    def writes(self) -> GroupCommit:
        """Where devices' frequent writes (telemetry, reported states, long-polls seen) are
        stored, many to a transaction."""
        if self._writes is None:
            raise RuntimeError("the hub is not started; run the app inside its lifespan")
        return self._writes

    @property
    def reads(self) -> GroupCommit:
        """Where devices' frequent reads (their tokens, where none is remembered) are made,
        many to a transaction."""
        if self._reads is None:
            raise RuntimeError("the hub is not started; run the app inside its lifespan")
        return self._reads

    @property
    def serving(self) -> Answering:
        """The bundles the hub serves to devices that offload to the cloud tier."""
        if self._serving is None:
            raise RuntimeError("the hub is not started; run the app inside its lifespan")
        return self._serving

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        self.open_files()
        self.notifier.bind(loop)

    def open_files(self) -> None:
        """Hold the data directory, upgrade and open the database; nothing when already open.

        Raises `StartRefused` when another process holds the data directory, the database
        cannot be opened or a newer release made it."""
        if self._db is not None:
            return
        data_dir = self.settings.data_dir
        holder = (
            f"the hub of process {os.getpid()} (http://{self.settings.host}:{self.settings.port})"
        )
        url = datadir.database_url(data_dir, self.settings.database_url)
        with ExitStack() as held:
            held.enter_context(datadir.hold(data_dir, holder, alone=not datadir.shared(url)))
            self._db = Database(url)
            self._held = held.pop_all()
        if self._db.engine.dialect.name == "postgresql":
            self._channel = DesiredChannel(self._db.engine, self.notifier, self.holder)
        change = self._db.schema_change
        if change.before != change.after:
            log.info("%s: %s", masked(self._db.url), change)
        # Replicas on a shared database may be running jobs: the controller fails those whose
        # hub process stopped, once its lease lapses.
        if not datadir.shared(url):
            with self._db.writer() as session:
                if interrupted := jobs.fail_interrupted(session):
                    log.warning("%d jobs were running when the hub stopped: failed", interrupted)
                session.commit()
        self._bundles = BundleStore(data_dir / "artifacts")
        self._keys = HubKeys(data_dir / "keys")
        self._artifacts = CheckedArtifacts(self._bundles)
        self._writes = GroupCommit(self._db)
        self._reads = GroupCommit(self._db, reads=True)
        # Its own keys, as a device pins them: a bundle signed after a rotation carries the
        # chain that endorses the newer key.
        self._serving = Answering(ModelServer("cloud", TrustedKeys(self._keys.public())))

    def desired_changed(self, device_ids: Iterable[str]) -> None:
        """Wake the long-polls of `device_ids`, whose desired state just changed (committed),
        in this hub and in every replica sharing its database. Call it from a worker thread:
        on PostgreSQL it tells the other replicas through the database."""
        device_ids = list(device_ids)
        for device_id in device_ids:
            self.notifier.notify(device_id)
        if self._channel is None:
            return
        try:
            self._channel.send(device_ids)
        except SQLAlchemyError:
            # The change is committed; the other replicas' long-polls read it when they end.
            log.exception("could not tell the other replicas of %d changes", len(device_ids))

    async def hear_replicas(self) -> None:
        """Wake long-polls here on the changes other replicas make, until cancelled; returns
        at once on SQLite, which no other process shares."""
        if self._channel is not None:
            await self._channel.listen()

    def close(self) -> None:
        self.notifier.close()
        for grouped in (self._writes, self._reads):
            if grouped is not None:
                grouped.close()
        if self._db is not None:
            self._db.close()
        self._held.close()
        self._db = None
        self._bundles = None
        self._keys = None
        self._artifacts = None
        self._serving = None
        self._channel = None
        self._writes = None
        self._reads = None
