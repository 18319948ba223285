"""A typed Python client for the hub's control API, for outside applications and the CLI.

>>> with HubClient("http://127.0.0.1:8400", admin_token="...") as hub:
...     for device in hub.devices():
...         print(device.device_id, device.reported.status if device.reported else "silent")
"""

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Literal, TypeVar
from urllib.parse import quote, urlencode

import httpx
from pydantic import TypeAdapter, ValidationError
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import connect as ws_connect

from edgestack.bundle import InputSpec
from edgestack.protocol import (
    JOB_ENDED,
    PROTOCOL,
    PROTOCOL_HEADER,
    AccuracyView,
    AlertRule,
    AlertRules,
    AlertView,
    AuditView,
    Curated,
    DatasetDetail,
    DatasetSummary,
    DatasetVersion,
    DatasetView,
    DeliveryView,
    DeployRequest,
    DeployResponse,
    DesiredPatch,
    DesiredState,
    DeviceChoice,
    DeviceStatus,
    DeviceView,
    EventView,
    FeedbackAck,
    FeedbackBatch,
    Identity,
    InferenceAnswer,
    InferenceRequest,
    IngestAck,
    JobLog,
    JobReport,
    JobRequest,
    JobState,
    JobSubmit,
    JobView,
    KeyView,
    LabelledWindows,
    ModelView,
    PolicyName,
    PolicyRunView,
    PolicyTrigger,
    PolicyView,
    ProfileView,
    Relabel,
    RetrainPolicy,
    ReviewWindowView,
    RolloutRequest,
    RolloutState,
    RolloutView,
    SampleImport,
    SampleRecord,
    SampleSelection,
    TagsPatch,
    TelemetryView,
    TokenCreate,
    TokenSecret,
    TokenView,
    UndeployResponse,
    WebhookRequest,
    WebhookView,
    WindowAsk,
    WindowLabels,
    problem_detail,
)

__all__ = ["CALLED_ELSEWHERE", "HubClient", "HubError", "covered_operations", "sse_events"]

_Devices = TypeAdapter(list[DeviceView])
_Dataset = TypeAdapter(DatasetView)
_Models = TypeAdapter(list[ModelView])
_Events = TypeAdapter(list[EventView])
_Telemetry = TypeAdapter(list[TelemetryView])
_Datasets = TypeAdapter(list[DatasetSummary])
_Profiles = TypeAdapter(list[ProfileView])
_Keys = TypeAdapter(list[KeyView])
_Jobs = TypeAdapter(list[JobView])
_Claimed = TypeAdapter(JobView | None)
_Windows = TypeAdapter(list[ReviewWindowView])
_Policies = TypeAdapter(list[PolicyView])
_Runs = TypeAdapter(list[PolicyRunView])
_Alerts = TypeAdapter(list[AlertView])
_Rules = TypeAdapter(list[AlertRule])
_Accuracy = TypeAdapter(list[AccuracyView])
_Rollouts = TypeAdapter(list[RolloutView])
_Tokens = TypeAdapter(list[TokenView])
_Audit = TypeAdapter(list[AuditView])
_Webhooks = TypeAdapter(list[WebhookView])
_Deliveries = TypeAdapter(list[DeliveryView])

T = TypeVar("T")
P = TypeVar("P")
F = TypeVar("F", bound=Callable[..., object])

# Query parameters, a name repeated for a list.
Params = list[tuple[str, str | int | float | bool | None]]


def _window(
    after_id: int, before_id: int | None, newest_first: bool, limit: int
) -> dict[str, str | int]:
    params: dict[str, str | int] = {"after_id": after_id, "limit": limit}
    if before_id is not None:
        params["before_id"] = before_id
    if newest_first:
        params["order"] = "newest"
    return params


def sse_events(lines: Iterable[str]) -> Iterator[EventView]:
    """The events of a Server-Sent Events stream of `GET /api/v1/events/stream`, given its lines;
    comments and fields other than `data` are skipped, a message ends at a blank line."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield EventView.model_validate_json("\n".join(data))
            data = []
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").removeprefix(" "))


CALLED_ELSEWHERE: dict[str, str] = {
    "enrolment-enrol": "a device's, with the enrolment token: the agent's HubLink",
    "twin-get-desired": "a device's, with its own token: the agent's HubLink",
    "twin-put-reported": "a device's, with its own token: the agent's HubLink",
    "telemetry-ingest": "a device's, with its own token: the agent's HubLink",
    "events-ingest": "a device's, with its own token: the agent's HubLink",
    "samples-ingest": "a device's, with its own token: the agent's HubLink",
    "review-ingest": "a device's, with its own token: the agent's HubLink",
    "session-login": "the dashboard's: this client sends its token with every call",
    "session-logout": "the dashboard's: this client sends its token with every call",
}
"""The operations of the hub's API that `HubClient` leaves to others, and who calls them."""


def covered_operations() -> dict[str, str]:
    """The name of the `HubClient` method that calls each operation id of the hub's API."""
    return {
        operation: name
        for name, method in vars(HubClient).items()
        for operation in getattr(method, "operations", ())
    }


def _covers(*operations: str) -> Callable[[F], F]:
    def mark(method: F) -> F:
        method.operations = operations  # type: ignore[attr-defined]  # read by `covered_operations`
        return method

    return mark


def _refusal(method: str, path: str, response: httpx.Response) -> "HubError":
    return HubError(
        f"{method} {path}: {response.status_code} {problem_detail(response.content)}",
        response.status_code,
    )


class HubError(Exception):
    """The hub refused a call or could not be reached; the message says which and why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HubClient:
    """The hub's API as typed methods, one or more per operation (`covered_operations`),
    each answering the wire models of `edgestack.protocol`; a refusal raises `HubError`.
    Listings by name answer every row, asked for `page_size` at a time."""

    def __init__(
        self,
        url: str,
        *,
        admin_token: str,
        timeout_s: float = 30.0,
        page_size: int = 1000,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self._headers = {"Authorization": f"Bearer {admin_token}", PROTOCOL_HEADER: str(PROTOCOL)}
        self.page_size = page_size
        self._http = httpx.Client(
            base_url=url, transport=transport, timeout=timeout_s, headers=self._headers
        )

    def __enter__(self) -> "HubClient":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @_covers("health-check")
    def healthy(self) -> bool:
        try:
            return self._http.get("/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    @_covers("session-me")
    def me(self) -> Identity:
        """Who this client's token speaks for, and its role."""
        return Identity.model_validate_json(self._call("GET", "/api/v1/me").content)

    @_covers("devices-list")
    def devices(
        self, *, tag: Sequence[str] = (), status: DeviceStatus | None = None
    ) -> list[DeviceView]:
        """The enrolled devices by id; only those carrying every `key=value` of `tag` and
        reporting `status`, when given."""
        params: Params = [("tag", term) for term in tag]
        if status:
            params.append(("status", status))
        return self._rows("/api/v1/devices", params, _Devices)

    @_covers("devices-get")
    def device(self, device_id: str) -> DeviceView:
        return DeviceView.model_validate_json(
            self._call("GET", f"/api/v1/devices/{device_id}").content
        )

    @_covers("devices-approve")
    def approve(self, device_id: str) -> DeviceView:
        """Let the next enrolment of `device_id` through without its device token, once."""
        return DeviceView.model_validate_json(
            self._call("POST", f"/api/v1/devices/{device_id}/approval").content
        )

    @_covers("devices-tag")
    def tag(self, device_id: str, patch: TagsPatch) -> DeviceView:
        """Set and remove tags of `device_id`; its view as it is after."""
        body = patch.model_dump_json()
        response = self._call("PATCH", f"/api/v1/devices/{device_id}/tags", content=body)
        return DeviceView.model_validate_json(response.content)

    @_covers("deployments-undeploy")
    def undeploy(self, choice: DeviceChoice) -> UndeployResponse:
        """Have the chosen devices run no model."""
        response = self._call("POST", "/api/v1/undeployments", content=choice.model_dump_json())
        return UndeployResponse.model_validate_json(response.content)

    @_covers("twin-patch-desired")
    def update_desired(self, device_id: str, patch: DesiredPatch) -> DesiredState:
        body = patch.model_dump_json(exclude_unset=True)
        response = self._call("PATCH", f"/api/v1/devices/{device_id}/desired", content=body)
        return DesiredState.model_validate_json(response.content)

    @_covers("models-register")
    def register_model(self, bundle: bytes, *, digest: str | None = None) -> ModelView:
        """Register a packed bundle (`digest`: what its bytes must hash to). The hub numbers
        it the next version of its name and signs it: the answer holds that version and the
        signed bundle's digest, which deployments and devices use. The same bytes again, or
        the same model and manifest made again, answer the version they got the first time."""
        response = self._call(
            "POST",
            "/api/v1/models",
            content=bundle,
            params={"digest": digest} if digest else None,
            headers={"Content-Type": "application/octet-stream"},
        )
        return ModelView.model_validate_json(response.content)

    @_covers("models-list")
    def models(self) -> list[ModelView]:
        """Every registered model version, by name and version."""
        return self._rows("/api/v1/models", [], _Models)

    @_covers("artifacts-get")
    def bundle(self, digest: str) -> bytes:
        """The packed bundle registered under `digest`."""
        return self._call("GET", f"/api/v1/artifacts/{digest}").content

    @_covers("inference-answer")
    def infer(self, request: InferenceRequest) -> InferenceAnswer:
        """The hub's answer, as the cloud tier, to `request`'s rows with the bundle it names."""
        body = request.model_dump_json()
        return InferenceAnswer.model_validate_json(
            self._call("POST", "/api/v1/infer", content=body).content
        )

    @_covers("profiles-list")
    def profiles(self) -> list[ProfileView]:
        return _Profiles.validate_json(self._call("GET", "/api/v1/profiles").content)

    @_covers("keys-list")
    def keys(self) -> list[KeyView]:
        """The hub's bundle signing keys, oldest first; the active one signs."""
        return _Keys.validate_json(self._call("GET", "/api/v1/keys").content)

    @_covers("keys-rotate")
    def rotate_keys(self) -> list[KeyView]:
        """Make the hub sign with a new key, endorsed by the active one; answer every key."""
        return _Keys.validate_json(self._call("POST", "/api/v1/keys/rotate").content)

    @_covers("tokens-create")
    def create_token(self, request: TokenCreate) -> TokenSecret:
        """Make a named API token; its secret is in the answer only, never shown again."""
        response = self._call("POST", "/api/v1/tokens", content=request.model_dump_json())
        return TokenSecret.model_validate_json(response.content)

    @_covers("tokens-list")
    def tokens(self) -> list[TokenView]:
        """Every named API token, revoked and expired ones too, without their secrets."""
        return self._rows("/api/v1/tokens", [], _Tokens)

    @_covers("tokens-revoke")
    def revoke_token(self, name: str) -> TokenView:
        """Stop the token `name` working at once; HubError with status 409 when it was
        revoked already."""
        return TokenView.model_validate_json(self._call("DELETE", f"/api/v1/tokens/{name}").content)

    @_covers("audit-list")
    def audit(
        self,
        *,
        after_id: int = 0,
        before_id: int | None = None,
        newest_first: bool = False,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        limit: int = 100,
    ) -> list[AuditView]:
        """One page of the audit log, as `events` pages; only the actions of token `actor`,
        of operation `action` and on `target` (a device id, a resource's name), when given."""
        params = _window(after_id, before_id, newest_first, limit)
        params.update(
            (k, v) for k, v in (("actor", actor), ("action", action), ("target", target)) if v
        )
        return _Audit.validate_json(self._call("GET", "/api/v1/audit", params=params).content)

    @_covers("deployments-create")
    def deploy(self, request: DeployRequest) -> DeployResponse:
        response = self._call("POST", "/api/v1/deployments", content=request.model_dump_json())
        return DeployResponse.model_validate_json(response.content)

    @_covers("events-list")
    def events(
        self,
        *,
        after_id: int = 0,
        before_id: int | None = None,
        newest_first: bool = False,
        device: str | None = None,
        tags: Sequence[str] = (),
        limit: int = 100,
    ) -> list[EventView]:
        """One page of events: oldest first after `after_id`, or newest first before
        `before_id` when `newest_first`; only `device`'s, and only those of devices carrying
        every tag of `tags` (`key=value` each), when given."""
        params: dict[str, str | int | list[str]] = {
            **_window(after_id, before_id, newest_first, limit),
            "tag": list(tags),
        }
        if device:
            params["device"] = device
        return _Events.validate_json(self._call("GET", "/api/v1/events", params=params).content)

    @_covers("telemetry-list")
    def telemetry(
        self,
        device_id: str,
        *,
        after_id: int = 0,
        before_id: int | None = None,
        newest_first: bool = False,
        limit: int = 100,
    ) -> list[TelemetryView]:
        """One page of a device's telemetry batches, as `events` pages events."""
        params = _window(after_id, before_id, newest_first, limit)
        response = self._call("GET", f"/api/v1/devices/{device_id}/telemetry", params=params)
        return _Telemetry.validate_json(response.content)

    @_covers("events-stream")
    def stream_events(
        self,
        *,
        after_id: int = 0,
        device: str | None = None,
        tags: Sequence[str] = (),
        kinds: Sequence[str] = (),
        severity: str | None = None,
        follow: bool = True,
        retry_s: float = 1.0,
    ) -> Iterator[EventView]:
        """Every event after `after_id` of `device`, of devices carrying all `tags`
        (`key=value` each), of `kinds` and of `severity` or worse (each when given), then each
        new one as the hub stores it, over Server-Sent Events. A connection
        that drops is opened again from the last event seen (`Last-Event-ID`), so none is
        missed or seen twice. Endless while following: stop iterating, or press Ctrl-C. A
        refusal raises `HubError`."""
        params: Params = [("follow", "true" if follow else "false")]
        params += [("kind", kind) for kind in kinds]
        params += [("tag", tag) for tag in tags]
        params += [(k, v) for k, v in (("device", device), ("severity", severity)) if v]
        last = after_id
        while True:
            headers = {"Last-Event-ID": str(last), "Accept": "text/event-stream"}
            try:
                with self._http.stream(
                    "GET",
                    "/api/v1/events/stream",
                    params=params,
                    headers=headers,
                    # the hub says something at least every 15 s while following
                    timeout=httpx.Timeout(10.0, read=60.0),
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise _refusal("GET", "/api/v1/events/stream", response)
                    for view in sse_events(response.iter_lines()):
                        last = view.id
                        yield view
            except httpx.TransportError:
                time.sleep(retry_s)
                continue
            if not follow:
                return

    def socket_events(
        self,
        *,
        after_id: int = 0,
        device: str | None = None,
        tags: Sequence[str] = (),
        kinds: Sequence[str] = (),
        severity: str | None = None,
        retry_s: float = 1.0,
    ) -> Iterator[EventView]:
        """What `stream_events` follows, over the hub's WebSocket (`/api/v1/events/ws`) rather
        than Server-Sent Events: every event after `after_id` that the filters take, then each
        new one. A connection that drops, or a hub that stops, is opened again after the last
        event seen. Endless: stop iterating, or press Ctrl-C. A refusal raises `HubError`."""
        filters = [("tag", tag) for tag in tags] + [("kind", kind) for kind in kinds]
        filters += [(k, v) for k, v in (("device", device), ("severity", severity)) if v]
        path = "/api/v1/events/ws"
        # http://hub becomes ws://hub, https://hub wss://hub
        url = "ws" + self.url.rstrip("/").removeprefix("http") + path
        last = after_id
        while True:
            query = urlencode([("after_id", str(last)), *filters])
            refusal = ""
            try:
                with ws_connect(
                    f"{url}?{query}", additional_headers=self._headers, proxy=None
                ) as socket:
                    for message in socket:
                        try:
                            view = EventView.model_validate_json(message)
                        except ValidationError:
                            raw = message.encode() if isinstance(message, str) else bytes(message)
                            refusal = problem_detail(raw)
                            continue
                        last = view.id
                        yield view
            except ConnectionClosedError as exc:
                code = exc.rcvd.code if exc.rcvd else 1006
                if 4000 <= code < 5000:  # the hub's refusals: 4000 + the HTTP status
                    raise HubError(f"GET {path}: {code - 4000} {refusal}", code - 4000) from None
            except InvalidStatus as exc:
                response = exc.response
                detail = problem_detail(bytes(response.body or b""))
                raise HubError(
                    f"GET {path}: {response.status_code} {detail}", response.status_code
                ) from None
            except OSError:
                pass
            time.sleep(retry_s)

    @_covers("samples-list")
    def samples(
        self, *, label: str | None = None, device: str | None = None, dataset: str | None = None
    ) -> DatasetView:
        """Every collected sample (of `dataset`, `device`, `label` where given), oldest first,
        asked for a page at a time."""
        specs: dict[str, InputSpec] = {}
        records: list[SampleRecord] = []
        given = (("label", label), ("device", device), ("dataset", dataset))
        params: Params = [(k, v) for k, v in given if v]
        for page in self._pages("/api/v1/samples", params, _Dataset):
            specs.update(page.specs)
            records.extend(page.samples)
        return DatasetView(specs=specs, samples=records)

    @_covers("datasets-list")
    def datasets(self) -> list[DatasetSummary]:
        """Every dataset holding samples, by name."""
        return self._rows("/api/v1/datasets", [], _Datasets)

    @_covers("datasets-get")
    def dataset(self, name: str) -> DatasetDetail:
        """Raises HubError with status 404 while `name` holds no samples."""
        response = self._call("GET", f"/api/v1/datasets/{_segment(name)}")
        return DatasetDetail.model_validate_json(response.content)

    @_covers("datasets-freeze")
    def freeze(self, name: str, *, spec: str | None = None) -> DatasetVersion:
        """Freeze what dataset `name` holds now as its next version; `spec` picks the input
        spec's fingerprint when its samples mix several."""
        params = {"spec": spec} if spec else None
        response = self._call("POST", f"/api/v1/datasets/{_segment(name)}/versions", params=params)
        return DatasetVersion.model_validate_json(response.content)

    @_covers("datasets-relabel")
    def relabel(self, name: str, change: Relabel) -> Curated:
        """Give the samples of dataset `name` that `change` selects its label `to`; the hub
        freezes the next version, which the answer holds with how many samples changed."""
        response = self._call(
            "POST", f"/api/v1/datasets/{_segment(name)}/relabel", content=change.model_dump_json()
        )
        return Curated.model_validate_json(response.content)

    @_covers("datasets-remove")
    def remove_samples(self, name: str, selection: SampleSelection) -> Curated:
        """Remove the samples of dataset `name` that `selection` selects; the hub freezes the
        next version, which the answer holds with how many samples were removed."""
        response = self._call(
            "POST",
            f"/api/v1/datasets/{_segment(name)}/removal",
            content=selection.model_dump_json(),
        )
        return Curated.model_validate_json(response.content)

    @_covers("datasets-export")
    def dataset_parquet(self, name: str, version: int) -> bytes:
        """The Parquet file of a frozen version."""
        return self._call(
            "GET", f"/api/v1/datasets/{_segment(name)}/versions/{version}/parquet"
        ).content

    @_covers("datasets-import")
    def import_samples(self, name: str, batch: SampleImport) -> IngestAck:
        response = self._call(
            "POST", f"/api/v1/datasets/{_segment(name)}/samples", content=batch.model_dump_json()
        )
        return IngestAck.model_validate_json(response.content)

    @_covers("review-ask")
    def ask_windows(self, device_id: str, count: int) -> DesiredState:
        """Ask a device for its `count` least confident recent windows, for review."""
        body = WindowAsk(count=count).model_dump_json()
        response = self._call("POST", f"/api/v1/devices/{device_id}/window-requests", content=body)
        return DesiredState.model_validate_json(response.content)

    @_covers("review-list")
    def windows(
        self,
        *,
        after_id: int = 0,
        device: str | None = None,
        labelled: bool | None = None,
        limit: int = 100,
    ) -> list[ReviewWindowView]:
        """One page of the windows sent for review, oldest first after `after_id`."""
        params = _window(after_id, None, False, limit)
        if device:
            params["device"] = device
        if labelled is not None:
            params["labelled"] = "true" if labelled else "false"
        return _Windows.validate_json(self._call("GET", "/api/v1/windows", params=params).content)

    @_covers("review-label")
    def label_windows(self, labels: WindowLabels) -> LabelledWindows:
        """Label windows sent for review; each becomes a sample of `labels.dataset`."""
        response = self._call("POST", "/api/v1/windows/label", content=labels.model_dump_json())
        return LabelledWindows.model_validate_json(response.content)

    @_covers("policies-put")
    def set_policy(self, name: PolicyName, policy: RetrainPolicy) -> PolicyView:
        """Set policy `name`; it runs when a drift alert is raised on devices."""
        response = self._call("PUT", f"/api/v1/policies/{name}", content=policy.model_dump_json())
        return PolicyView.model_validate_json(response.content)

    @_covers("policies-list")
    def policies(self) -> list[PolicyView]:
        return self._rows("/api/v1/policies", [], _Policies)

    @_covers("policies-get")
    def policy(self, name: PolicyName) -> PolicyView:
        return PolicyView.model_validate_json(self._call("GET", f"/api/v1/policies/{name}").content)

    @_covers("policies-delete")
    def remove_policy(self, name: PolicyName) -> None:
        """Remove policy `name`; a run of it in progress is failed."""
        self._call("DELETE", f"/api/v1/policies/{name}")

    @_covers("policies-trigger")
    def run_policy(self, name: PolicyName, trigger: PolicyTrigger) -> PolicyRunView:
        """Start a run of policy `name` for `trigger.devices` now."""
        response = self._call(
            "POST", f"/api/v1/policies/{name}/runs", content=trigger.model_dump_json()
        )
        return PolicyRunView.model_validate_json(response.content)

    @_covers("policies-runs")
    def policy_runs(self, *, newest_first: bool = False, limit: int = 100) -> list[PolicyRunView]:
        """One page of policy runs, oldest first, or the newest when `newest_first`."""
        params = _window(0, None, newest_first, limit)
        return _Runs.validate_json(self._call("GET", "/api/v1/policy-runs", params=params).content)

    @_covers("jobs-submit")
    def submit_job(self, job: JobRequest) -> JobView:
        """Queue `job` for the hub's worker process."""
        body = JobSubmit(job=job).model_dump_json()
        return JobView.model_validate_json(self._call("POST", "/api/v1/jobs", content=body).content)

    @_covers("jobs-list")
    def jobs(
        self,
        *,
        after_id: int = 0,
        newest_first: bool = False,
        state: JobState | None = None,
        limit: int = 100,
    ) -> list[JobView]:
        """One page of jobs: oldest first after `after_id`, or the newest when
        `newest_first`; only those in `state` when given."""
        params = _window(after_id, None, newest_first, limit)
        if state:
            params["state"] = state
        return _Jobs.validate_json(self._call("GET", "/api/v1/jobs", params=params).content)

    @_covers("jobs-get")
    def job(self, job_id: int) -> JobView:
        return JobView.model_validate_json(self._call("GET", f"/api/v1/jobs/{job_id}").content)

    @_covers("jobs-log")
    def job_log(self, job_id: int, *, after: int = 0, limit: int = 1000) -> list[str]:
        """The job's log lines after the first `after`."""
        params: dict[str, str | int] = {"after": after, "limit": limit}
        response = self._call("GET", f"/api/v1/jobs/{job_id}/log", params=params)
        return JobLog.model_validate_json(response.content).lines

    def follow_job_log(self, job_id: int, *, every_s: float = 1.0) -> Iterator[str]:
        """The job's log lines from the first, as they come, until it has ended and every
        line is read; then `job(job_id)` says how it ended. A hub that cannot be reached is
        asked again; a refusal raises `HubError`."""
        after = 0
        while True:
            try:
                ended = self.job(job_id).state in JOB_ENDED
                lines = self.job_log(job_id, after=after)
            except HubError as exc:
                if exc.status is not None:
                    raise
                time.sleep(every_s)
                continue
            yield from lines
            after += len(lines)
            if lines:
                continue
            if ended:
                return
            time.sleep(every_s)

    @_covers("jobs-cancel")
    def cancel_job(self, job_id: int) -> JobView:
        """Cancel a queued or running job; HubError with status 409 once it has ended."""
        return JobView.model_validate_json(
            self._call("POST", f"/api/v1/jobs/{job_id}/cancel").content
        )

    @_covers("jobs-claim")
    def claim_job(self) -> JobView | None:
        """For the hub's worker: the oldest queued job, now running; None when none waits."""
        return _Claimed.validate_json(self._call("POST", "/api/v1/jobs/claim").content)

    @_covers("jobs-report")
    def report_job(self, job_id: int, news: JobReport) -> JobView:
        """For a job's process: its progress, log lines or outcome; HubError with status 409
        once the job is no longer running (cancelled), which means: stop."""
        response = self._call(
            "POST", f"/api/v1/jobs/{job_id}/report", content=news.model_dump_json()
        )
        return JobView.model_validate_json(response.content)

    @_covers("alerts-list")
    def alerts(
        self,
        *,
        after_id: int = 0,
        before_id: int | None = None,
        newest_first: bool = False,
        device: str | None = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> list[AlertView]:
        """One page of alerts, as `events` pages; only `device`'s, and only those not yet
        cleared with `open_only`."""
        params = _window(after_id, before_id, newest_first, limit)
        if device:
            params["device"] = device
        if open_only:
            params["open"] = "true"
        return _Alerts.validate_json(self._call("GET", "/api/v1/alerts", params=params).content)

    @_covers("alerts-rules")
    def alert_rules(self) -> list[AlertRule]:
        """Every signal's alert rule, as set or by default."""
        return _Rules.validate_json(self._call("GET", "/api/v1/alerts/rules").content)

    @_covers("alerts-set-rules")
    def set_alert_rules(self, rules: AlertRules) -> list[AlertRule]:
        """Set the rules `rules` names; answers every signal's rule."""
        response = self._call("PUT", "/api/v1/alerts/rules", content=rules.model_dump_json())
        return _Rules.validate_json(response.content)

    @_covers("feedback-post")
    def post_feedback(self, batch: FeedbackBatch) -> FeedbackAck:
        """Post labelled spans; `notes` on the answer say what was accepted but looks wrong."""
        response = self._call("POST", "/api/v1/feedback", content=batch.model_dump_json())
        return FeedbackAck.model_validate_json(response.content)

    @_covers("accuracy-list")
    def accuracy(
        self, *, device: str | None = None, model: str | None = None
    ) -> list[AccuracyView]:
        """Live and estimated accuracy per device and model version, filtered when asked."""
        params: Params = [(k, v) for k, v in (("device", device), ("model", model)) if v]
        return self._rows("/api/v1/accuracy", params, _Accuracy)

    @_covers("rollouts-start")
    def start_rollout(self, request: RolloutRequest) -> RolloutView:
        """Start a rollout; its first wave runs the candidate in shadow."""
        response = self._call("POST", "/api/v1/rollouts", content=request.model_dump_json())
        return RolloutView.model_validate_json(response.content)

    @_covers("rollouts-list")
    def rollouts(
        self, *, newest_first: bool = False, state: RolloutState | None = None, limit: int = 100
    ) -> list[RolloutView]:
        """One page of rollouts, oldest first or the newest when `newest_first`."""
        params = _window(0, None, newest_first, limit)
        if state:
            params["state"] = state
        return _Rollouts.validate_json(self._call("GET", "/api/v1/rollouts", params=params).content)

    @_covers("metrics-scrape")
    def metrics(self) -> str:
        """The fleet's metrics in Prometheus' text format, as a scrape of `/metrics` reads them."""
        return self._call("GET", "/metrics").text

    @_covers("rollouts-get")
    def rollout(self, rollout_id: int) -> RolloutView:
        response = self._call("GET", f"/api/v1/rollouts/{rollout_id}")
        return RolloutView.model_validate_json(response.content)

    @_covers(
        "rollouts-promote",
        "rollouts-pause",
        "rollouts-resume",
        "rollouts-abort",
        "rollouts-rollback",
    )
    def steer_rollout(
        self,
        rollout_id: int,
        action: Literal["promote", "pause", "resume", "abort", "rollback"],
    ) -> RolloutView:
        """Promote the current wave now, pause, resume, abort or roll back a rollout;
        HubError with status 409 when its state does not allow it."""
        response = self._call("POST", f"/api/v1/rollouts/{rollout_id}/{action}")
        return RolloutView.model_validate_json(response.content)

    @_covers("webhooks-create")
    def add_webhook(self, request: WebhookRequest) -> WebhookView:
        """Subscribe `request.url` to the events its filters take; the answer alone holds the
        signing secret."""
        response = self._call("POST", "/api/v1/webhooks", content=request.model_dump_json())
        return WebhookView.model_validate_json(response.content)

    @_covers("webhooks-list")
    def webhooks(self) -> list[WebhookView]:
        return self._rows("/api/v1/webhooks", [], _Webhooks)

    @_covers("webhooks-delete")
    def remove_webhook(self, webhook_id: int) -> None:
        """Stop delivering to webhook `webhook_id` and forget it; HubError 404 when none."""
        self._call("DELETE", f"/api/v1/webhooks/{webhook_id}")

    @_covers("webhooks-deliveries")
    def deliveries(
        self,
        webhook_id: int,
        *,
        after_id: int = 0,
        newest_first: bool = False,
        limit: int = 100,
    ) -> list[DeliveryView]:
        """One page of webhook `webhook_id`'s delivery log, an entry per attempt: oldest first
        after `after_id`, or the newest when `newest_first`."""
        params = _window(after_id, None, newest_first, limit)
        path = f"/api/v1/webhooks/{webhook_id}/deliveries"
        return _Deliveries.validate_json(self._call("GET", path, params=params).content)

    def _rows(self, path: str, params: Params, page: TypeAdapter[list[T]]) -> list[T]:
        """Every row of a listing, asked for a page at a time."""
        return [row for rows in self._pages(path, params, page) for row in rows]

    def _pages(self, path: str, params: Params, page: TypeAdapter[P]) -> Iterator[P]:
        """Every page of a listing: each says in `Link: <...>; rel="next"` where the next one
        is; the last says nothing."""
        response = self._call("GET", path, params=[*params, ("limit", self.page_size)])
        while True:
            yield page.validate_json(response.content)
            following = response.links.get("next", {}).get("url")
            if not following:
                return
            response = self._call("GET", following)

    def _call(
        self,
        method: str,
        path: str,
        *,
        content: str | bytes | None = None,
        params: Params | Mapping[str, str | int | list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        if content is not None and headers is None:
            headers = {"Content-Type": "application/json"}
        try:
            response = self._http.request(
                method, path, content=content, params=params, headers=headers
            )
        except httpx.TransportError as exc:
            raise HubError(f"cannot reach the hub at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise _refusal(method, path, response)
        return response


def _segment(name: str) -> str:
    """`name` as one segment of a path: a dataset's name may hold `?`, `#`, `%` or spaces."""
    return quote(name, safe="")
