"""The hub's HTTP API: one router per resource, and the answers to refused requests."""

from edgestack.hub.api import (
    accuracy,
    alerts,
    artifacts,
    datasets,
    deployments,
    devices,
    enrolment,
    events,
    feedback,
    health,
    jobs,
    keys,
    metrics,
    models,
    policies,
    profiles,
    review,
    rollouts,
    samples,
    telemetry,
    twin,
)
from edgestack.hub.api.problems import install_problem_handlers

__all__ = ["ROUTERS", "install_problem_handlers"]

ROUTERS = (
    health.router,
    enrolment.router,
    twin.router,
    devices.router,
    telemetry.router,
    events.router,
    samples.router,
    datasets.router,
    models.router,
    keys.router,
    profiles.router,
    deployments.router,
    artifacts.router,
    metrics.router,
    jobs.router,
    review.router,
    policies.router,
    alerts.router,
    feedback.router,
    accuracy.router,
    rollouts.router,
)
