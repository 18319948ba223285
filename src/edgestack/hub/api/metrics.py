from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from edgestack.hub import metrics
from edgestack.hub.api.deps import SessionDep, ViewerDep

__all__ = ["router"]

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    operation_id="metrics-scrape",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "the text format"}},
)
def scrape(_: ViewerDep, session: SessionDep) -> Response:
    """The fleet's metrics in Prometheus' text format, read from the database at each scrape:
    per device and model, windows, predictions per label, latency p50/p95 per window and
    p50/p95/p99 per model call, throughput, CPU and memory, input drift (largest PSI and KS,
    PSI per feature), anomaly score, change-detector alarms, bad input per reason, outbox
    drops and depth, failed chunks, last-seen age, desired and reported versions, status;
    events per kind. Needs the admin token, since it names every device and model: give it
    to Prometheus as the scrape job's bearer token (`authorization: {credentials: ...}`)."""
    return Response(metrics.exposition(session), media_type=CONTENT_TYPE_LATEST)
