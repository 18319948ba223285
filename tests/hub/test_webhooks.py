import base64
import time

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from edgestack.hub.webhooks import new_secret, signed_headers
from edgestack.protocol import WebhookView

from .factories import ADMIN

pytestmark = pytest.mark.anyio


async def test_a_webhook_is_created_with_its_secret_shown_once_listed_and_removed(
    client: httpx.AsyncClient,
) -> None:
    body = {
        "url": "https://apps.example/hooks/edgestack",
        "tag": ["site=plant-4"],
        "kind": ["alarm_raised", "alert_raised"],
        "severity": "warning",
        "description": "alarms of plant 4",
    }

    created = await client.post("/api/v1/webhooks", json=body, headers=ADMIN)
    listed = await client.get("/api/v1/webhooks", headers=ADMIN)
    log = await client.get(f"/api/v1/webhooks/{created.json()['id']}/deliveries", headers=ADMIN)
    removed = await client.delete(f"/api/v1/webhooks/{created.json()['id']}", headers=ADMIN)
    again = await client.delete(f"/api/v1/webhooks/{created.json()['id']}", headers=ADMIN)
    after = await client.get("/api/v1/webhooks", headers=ADMIN)

    assert created.status_code == 201, created.text
    view = WebhookView.model_validate(created.json())
    assert view.secret is not None and view.secret.startswith("whsec_")
    assert len(base64.b64decode(view.secret.removeprefix("whsec_"))) >= 24
    assert {k: created.json()[k] for k in body} == body
    assert listed.json() == [{**created.json(), "secret": None}]
    assert log.json() == []
    assert removed.status_code == 204
    assert again.status_code == 404 and "no webhook" in again.json()["detail"]
    assert after.json() == []


async def test_each_webhook_gets_its_own_secret(client: httpx.AsyncClient) -> None:
    secrets = {
        (
            await client.post("/api/v1/webhooks", json={"url": "http://a.example"}, headers=ADMIN)
        ).json()["secret"]
        for _ in range(3)
    }

    assert len(secrets) == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://files.example/in"}, "body.url: Value error, 'ftp://files.example/in'"),
        ({"url": "apps.example/hook"}, "body.url: Value error, 'apps.example/hook' is no webhook"),
        ({"url": "http://"}, "body.url: Value error, 'http://' is no webhook URL"),
        ({"url": "http://xn--a.com/"}, "body.url: Value error, 'http://xn--a.com/' is no URL"),
        (
            {"url": "http://\u00e9\u00e9--.com/"},
            "body.url: Value error, 'http://\u00e9\u00e9--.com/' is no",
        ),
        ({"url": "http://a.example", "tag": ["site"]}, "body.tag[0]: Value error, 'site'"),
        ({"url": "http://a.example", "kind": ["nonsense"]}, "body.kind[0]"),
        ({"url": "http://a.example", "severity": "dire"}, "body.severity:"),
        ({"url": "http://a.example", "secret": "mine"}, "body.secret: Extra inputs"),
        ({}, "body.url: Field required"),
    ],
)
async def test_a_bad_webhook_is_refused_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    response = await client.post("/api/v1/webhooks", json=body, headers=ADMIN)

    assert response.status_code == 422
    assert response.json()["detail"].startswith(field)


async def test_webhooks_need_the_admin_token(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("POST", "/api/v1/webhooks"),
        ("GET", "/api/v1/webhooks"),
        ("DELETE", "/api/v1/webhooks/1"),
        ("GET", "/api/v1/webhooks/1/deliveries"),
    ]:
        response = await client.request(method, path, json={"url": "http://a.example"})

        assert response.status_code == 401, (method, path)


async def test_the_log_of_a_webhook_never_made_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/webhooks/7/deliveries", headers=ADMIN)

    assert response.status_code == 404
    assert response.json()["detail"].startswith("no webhook 7")


def test_signatures_verify_with_an_independent_standard_webhooks_implementation() -> None:
    secret = new_secret()
    body = b'{"id": 7, "event": {"kind": "alarm_raised"}}'
    headers = signed_headers(secret, "evt_7", int(time.time()), body)

    verified = Webhook(secret).verify(body, headers)

    assert verified == {"id": 7, "event": {"kind": "alarm_raised"}}
    assert headers["webhook-id"] == "evt_7"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"7", b"8"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
