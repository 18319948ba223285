"""The hub's HTTP API: one router per resource, and the answers to refused requests."""

from edgestack.hub.api import (
    accuracy,
    alerts,
    artifacts,
    audit,
    datasets,
    deployments,
    devices,
    enrolment,
    events,
    feedback,
    health,
    inference,
    jobs,
    keys,
    metrics,
    models,
    policies,
    profiles,
    review,
    rollouts,
    samples,
    session,
    telemetry,
    tokens,
    twin,
    webhooks,
)
from edgestack.hub.api.problems import install_problem_handlers

__all__ = ["API_PREFIX", "LEGACY_PREFIX", "ROOT_ROUTERS", "ROUTERS", "install_problem_handlers"]

API_PREFIX = "/api/v1"
# Where the API answered before it moved under /api/v1: agents of protocol 2 and older call
# it there, so it stays (out of the OpenAPI document) while the hub speaks protocol 2.
LEGACY_PREFIX = "/v1"

# Outside any version: probes and scrapers call them by a fixed path.
ROOT_ROUTERS = (health.router, metrics.router)

# Matched in this order, router after router, every one of a prefix before the next prefix:
# what every device calls every few seconds comes first.
ROUTERS = (
    telemetry.router,
    twin.router,
    events.router,
    session.router,
    enrolment.router,
    devices.router,
    samples.router,
    datasets.router,
    models.router,
    keys.router,
    profiles.router,
    deployments.router,
    artifacts.router,
    inference.router,
    jobs.router,
    review.router,
    policies.router,
    alerts.router,
    feedback.router,
    accuracy.router,
    rollouts.router,
    tokens.router,
    audit.router,
    webhooks.router,
)
