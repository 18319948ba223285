"""Webhooks: subscriptions that have the hub POST the events they take to a URL, signed."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from edgestack.hub.api.body import json_body
from edgestack.hub.api.deps import (
    AdminDep,
    AuditedAdminDep,
    SessionDep,
    WindowDep,
    WriteSessionDep,
)
from edgestack.hub.api.paging import KeysDep, PagerDep
from edgestack.hub.store import webhooks
from edgestack.hub.webhooks import new_secret
from edgestack.protocol import INT64_MAX, DeliveryView, WebhookRequest, WebhookView

__all__ = ["router"]

router = APIRouter(tags=["webhooks"])

WebhookBody = Annotated[WebhookRequest, Depends(json_body(WebhookRequest))]
WebhookId = Annotated[int, Path(ge=1, le=INT64_MAX, description="the webhook's id")]


@router.post("/webhooks", status_code=201, operation_id="webhooks-create")
def create_webhook(
    audit: AuditedAdminDep, request: WebhookBody, session: WriteSessionDep
) -> WebhookView:
    """Subscribe a URL to the events stored from now on that the filters take (`device`,
    `tag`, `kind`, `severity`; none: every event). Each is POSTed as its EventView JSON, in
    order, signed as Standard Webhooks sign (`webhook-id`, `webhook-timestamp`,
    `webhook-signature`) with `secret`, which this answer alone shows: keep it. A refusal
    (no 2xx answer in time) is tried again, waiting longer each time."""
    view = webhooks.create(session, request, new_secret())
    audit.target = str(view.id)
    # Never the secret: the log is read by every admin.
    audit.changed(None, view.model_copy(update={"secret": None}))
    session.commit()
    return view


@router.get("/webhooks", operation_id="webhooks-list")
def list_webhooks(
    _: AdminDep, session: SessionDep, pager: PagerDep, keys: KeysDep
) -> list[WebhookView]:
    """Every webhook, oldest first, without its secret."""
    # Ids padded, so the cursor sorts as the ids do.
    return pager.by_key(keys, webhooks.listed(session), lambda hook: f"{hook.id:019d}")


@router.delete("/webhooks/{webhook_id}", status_code=204, operation_id="webhooks-delete")
def delete_webhook(
    audit: AuditedAdminDep, webhook_id: WebhookId, session: WriteSessionDep
) -> Response:
    """Stop delivering to a webhook and forget it with its delivery log."""
    audit.changed(webhooks.remove(session, webhook_id), None)
    session.commit()
    return Response(status_code=204)


@router.get("/webhooks/{webhook_id}/deliveries", operation_id="webhooks-deliveries")
def list_deliveries(
    _: AdminDep, webhook_id: WebhookId, session: SessionDep, window: WindowDep, pager: PagerDep
) -> list[DeliveryView]:
    """One page of a webhook's delivery log, an entry per attempt, oldest first (follow with
    `after_id`) or newest first: the event, the attempt's number, the receiver's status or
    the error, how long it took, and when the next attempt goes."""
    return pager.by_id(window, webhooks.deliveries(session, webhook_id, window))
