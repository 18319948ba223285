"""The hub's controller: a task in the hub's process that moves every running rollout one
step per tick (`store.rollouts.advance`), then every policy (`store.policies.advance`, which
may start a rollout), and fails the jobs whose hub process died, each tick one short write
transaction; then, when due, a slice of retention (`hub.retention`) in short transactions of
its own.

It keeps nothing in memory: a hub started again picks every rollout and policy run up where
its row says. Where several hub replicas share a database, each tick takes the controller's
lease in its own transaction (`store.leases`), so one replica steps at a time, and another
takes over once a killed holder's lease expires.
"""

import asyncio
import contextlib
import logging

from edgestack.hub import retention
from edgestack.hub.context import HubContext
from edgestack.hub.lease import Lease
from edgestack.hub.store import jobs, leases, policies, rollouts

__all__ = ["Controller"]

log = logging.getLogger("edgestack.hub.controller")


class Controller:
    """Ticks every `tick_s` seconds from `run` until `stop`."""

    def __init__(self, hub: HubContext, tick_s: float) -> None:
        self._hub = hub
        self._tick_s = tick_s
        self._stopping = asyncio.Event()
        self._lease = Lease(hub, leases.CONTROLLER)

    def stop(self) -> None:
        """End `run` after the tick it may be in, so no tick outlives the database."""
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.to_thread(self._step)
            except Exception:  # one bad tick must not stop every rollout for good
                log.exception("a rollout or policy step failed; trying again next tick")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._tick_s)
        await asyncio.to_thread(self._leave)

    def tick(self) -> list[str]:
        """One step of every running rollout and policy run, when this hub holds or can take
        the controller's lease, and retention when due; the devices whose desired state changed."""
        hub = self._hub
        with hub.db.writer() as session:
            # Renewed by every replica, so the one that steps knows which still run jobs.
            leases.take(session, leases.replica(hub.holder), hub.holder, hub.settings.lease_s)
            changed = []
            leading = self._lease.take(session)
            if leading:
                changed = rollouts.advance(session)
                changed += policies.advance(session)
                if orphaned := jobs.fail_interrupted(session, leases.running(session)):
                    log.warning("%d jobs ran in hub processes that stopped: failed", orphaned)
                leases.forget(session)
            session.commit()
        # A step of the controller, so the lease that lets one replica step lets one retain.
        if leading:
            try:
                retention.run_if_due(hub.db, hub.settings)
            except Exception:  # the devices steered above must still hear of it
                log.exception("a retention step failed; trying again next tick")
        return changed

    def _step(self) -> None:
        self._hub.desired_changed(self.tick())

    def _leave(self) -> None:
        """This hub is stopping: fail the jobs its worker ran, which stop with it, and give up
        its leases, so no replica waits for them to lapse."""
        hub = self._hub
        try:
            with hub.db.writer() as session:
                others = leases.running(session) - {hub.holder}
                if stopped := jobs.fail_interrupted(session, others):
                    log.warning("%d jobs stop with this hub: failed", stopped)
                leases.release(session, leases.replica(hub.holder), hub.holder)
                session.commit()
        except Exception:  # its jobs fail once its lease lapses, in another replica
            log.exception("could not fail this hub's jobs as it stops")
        self._lease.release()
