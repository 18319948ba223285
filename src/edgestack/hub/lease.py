"""One named lease as a hub process holds it (`store.leases`): what the controller and
webhook delivery take before they act, so one replica on a shared database acts at a time."""

import logging

from sqlalchemy.orm import Session

from edgestack.hub.context import HubContext
from edgestack.hub.store import leases

__all__ = ["Lease"]

log = logging.getLogger("edgestack.hub.lease")


class Lease:
    """Lease `name` for this hub process, renewed for `settings.lease_s` by each `take`."""

    def __init__(self, hub: HubContext, name: str) -> None:
        self._hub = hub
        self._name = name
        self.holding = False

    def take(self, session: Session) -> bool:
        """Take or renew the lease in `session`, a writer the caller commits; whether this
        process holds it."""
        hub = self._hub
        holding = leases.take(session, self._name, hub.holder, hub.settings.lease_s)
        if holding != self.holding:
            log.info("%s the %s lease (%s)", "took" if holding else "lost", self._name, hub.holder)
            self.holding = holding
        return holding

    def release(self) -> None:
        """Give the lease up, if held, so another replica takes it at its next try rather than
        once it expires; a failure is logged, since an unrenewed lease lapses anyway."""
        if not self.holding:
            return
        try:
            with self._hub.db.writer() as session:
                leases.release(session, self._name, self._hub.holder)
                session.commit()
        except Exception:
            log.exception("could not give the %s lease up; it lapses unrenewed", self._name)
        self.holding = False
