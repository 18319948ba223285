"""Every device and admin endpoint of the hub's OpenAPI document, fuzzed through ASGI:
requests of any shape the document allows, and shapes it does not, get an answer below 500
that names the problem, and every answer is one the document states: its status, content
type, headers and body schema.

Device routes are called as the enrolled device `motor-1`, admin routes with the admin
token, each in the current protocol: a random token or version would stop every request at
the door. Bounded to a few examples per operation."""

import itertools
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python import asgi

from edgestack.hub import HubSettings, create_app
from edgestack.protocol import PROTOCOL, PROTOCOL_HEADER

from .factories import ADMIN, ADMIN_TOKEN, ENROL_TOKEN, HARDWARE, event_batch, sample_batch

EXAMPLES = 12
HOW_TO_FIX = (
    "Fix the route, or state what it answers: hub/api/answers.py gives every operation the "
    "refusals its kind may give (add a kind there for a refusal many routes share); a status "
    "only one route answers goes in its decorator's `responses={status: {...}}`."
)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
_DEVICE_ROUTES = ("/desired", "/reported", "/telemetry", "/events", "/samples")


@pytest.fixture(scope="module")
def hub_app(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str | None
) -> Iterator[FastAPI]:
    settings = HubSettings(
        data_dir=tmp_path_factory.mktemp("hub"),
        database_url=module_database_url,
        admin_token=SecretStr(ADMIN_TOKEN),
        enrol_token=SecretStr(ENROL_TOKEN),
    )
    yield create_app(settings)
    # The fuzzer's client started the app's lifespan; end it while its files still exist.
    asgi.shutdown_lifespans()


def _call(app: FastAPI, method: str, path: str, **kwargs: object) -> requests.Response:
    with asgi.get_client(app) as client:
        response: requests.Response = client.request(method, f"http://{asgi.HOST}{path}", **kwargs)
    assert response.status_code == 200, response.text
    return response


@pytest.fixture(scope="module")
def device_token(hub_app: FastAPI) -> str:
    body = {"device_id": "motor-1", "enrol_token": ENROL_TOKEN, "hardware": HARDWARE.model_dump()}
    token: str = _call(hub_app, "POST", "/api/v1/enrol", json=body).json()["device_token"]
    collect = {"collect": {"label": "normal", "dataset": "default"}}
    _call(hub_app, "PATCH", "/api/v1/devices/motor-1/desired", json=collect, headers=ADMIN)
    # Rows in the listings, so their answers are checked against the schema with some in.
    device = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for kind, batch in [("events", event_batch()), ("samples", sample_batch(2, 2))]:
        path = f"/api/v1/devices/motor-1/{kind}"
        _call(hub_app, "POST", path, data=batch.model_dump_json(), headers=device)
    return token


def _is_device_call(case: Case) -> bool:
    path = case.operation.path
    return path.startswith("/api/v1/devices/{device_id}/") and (
        path.endswith(_DEVICE_ROUTES) and case.method != "PATCH"
    )


def _check(case: Case, device_token: str) -> None:
    token = ADMIN_TOKEN
    if _is_device_call(case):
        token = device_token
        case.path_parameters = {**(case.path_parameters or {}), "device_id": "motor-1"}
        # A long-poll on an unchanged version would wait its whole `wait` for nothing.
        case.query = {**(case.query or {}), "wait": 0}
    elif case.operation.path == "/api/v1/events/stream":
        # Followed, the stream would stay open for events that never come.
        case.query = {**(case.query or {}), "follow": "false"}
    elif case.method == "PATCH":
        case.path_parameters = {**(case.path_parameters or {}), "device_id": "motor-1"}
    elif case.operation.path == "/api/v1/enrol" and isinstance(case.body, dict):
        case.body = {**case.body, "enrol_token": ENROL_TOKEN}
    headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
    headers[PROTOCOL_HEADER] = str(PROTOCOL)

    response = case.call(headers=headers)

    case.validate_response(response, checks=CHECKS)
    if response.status_code >= 400:
        assert response.json()["detail"], response.text


def test_no_request_gets_a_5xx_or_an_answer_the_document_does_not_state(
    hub_app: FastAPI, device_token: str
) -> None:
    api = schemathesis.openapi.from_asgi("/openapi.json", hub_app)
    operations = [result.ok() for result in api.get_all_operations()]

    for operation, mode in itertools.product(operations, GenerationMode):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: Case) -> None:
            _check(case, device_token)

        try:
            fuzz()
        except BaseExceptionGroup as failures:  # schemathesis' checks fail as one group
            raise AssertionError(HOW_TO_FIX) from failures

    assert len(operations) >= 20


def test_the_document_shows_every_body_the_hub_reads(hub_app: FastAPI) -> None:
    document = hub_app.openapi()

    bodies = {
        (method, path): op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if "application/json" in op.get("requestBody", {}).get("content", {})
    }

    assert bodies[("post", "/api/v1/devices/{device_id}/telemetry")].endswith("/TelemetryBatch")
    assert bodies[("post", "/api/v1/enrol")].endswith("/EnrolRequest")
    assert bodies[("patch", "/api/v1/devices/{device_id}/tags")].endswith("/TagsPatch")
    assert bodies[("post", "/api/v1/jobs")].endswith("/JobSubmit")
    assert bodies[("post", "/api/v1/jobs/{job_id}/report")].endswith("/JobReport")
    assert bodies[("put", "/api/v1/alerts/rules")].endswith("/AlertRules")
    assert bodies[("post", "/api/v1/feedback")].endswith("/FeedbackBatch")
    assert bodies[("post", "/api/v1/rollouts")].endswith("/RolloutRequest")
    assert bodies[("post", "/api/v1/tokens")].endswith("/TokenCreate")
    assert bodies[("post", "/api/v1/infer")].endswith("/InferenceRequest")
    assert len(bodies) == 26
    schemas = document["components"]["schemas"]
    assert {"TelemetryBatch", "EventBatch", "SampleBatch", "InputSpec"} <= schemas.keys()
