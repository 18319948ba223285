"""The hub's storage: tables and the small functions the API calls on them.

Functions take a `Session` and never commit: the caller owns the transaction, so a
request's writes land together or not at all.
"""

from edgestack.hub.store import (
    accounts,
    alerts,
    audit,
    batches,
    collection,
    curation,
    datasets,
    deployments,
    devices,
    events,
    feedback,
    gates,
    jobs,
    leases,
    registry,
    retention,
    rollouts,
    samples,
    sessions,
    targets,
    telemetry,
    tokens,
    webhooks,
)
from edgestack.hub.store.db import Base, Database, utcnow

__all__ = [
    "Base",
    "Database",
    "accounts",
    "alerts",
    "audit",
    "batches",
    "collection",
    "curation",
    "datasets",
    "deployments",
    "devices",
    "events",
    "feedback",
    "gates",
    "jobs",
    "leases",
    "registry",
    "retention",
    "rollouts",
    "samples",
    "sessions",
    "targets",
    "telemetry",
    "tokens",
    "utcnow",
    "webhooks",
]
