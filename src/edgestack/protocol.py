"""The contract between hub, agents and outside applications.

Every message on the wire is one of these models; neither side invents JSON.
Every call states its sender's `PROTOCOL` in the `PROTOCOL_HEADER` header (a call without
it speaks protocol 1, which had none); a hub speaks `OLDEST_PROTOCOL` to `PROTOCOL` and
refuses others, saying which it speaks. Readers ignore fields they do not know, so a field
added with a default is no break; any change to these models bumps `PROTOCOL`.

Everything a device sends is bounded here: counts fit a signed 64-bit integer, strings and
maps have a length, floats are finite, times carry a zone and fall in `MIN_TIME`..`MAX_TIME`.
"""

import base64
import binascii
import hashlib
import itertools
import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit
from uuid import UUID

import httpx
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from edgestack.bundle import Digest, InputSpec, Manifest, Name, PublicKey

__all__ = [
    "HUB_EVENT_KINDS",
    "INT64_MAX",
    "JOB_ENDED",
    "LOW_SIGNALS",
    "MAX_FEEDBACK_SPANS",
    "MAX_INFERENCE_ROWS",
    "MAX_REVIEW_WINDOWS",
    "MAX_TAGS",
    "MAX_TIME",
    "MIN_TIME",
    "NEXT_CURSOR_HEADER",
    "OLDEST_PROTOCOL",
    "POLICY_ENDED",
    "PROTOCOL",
    "PROTOCOL_HEADER",
    "ROLES",
    "AccuracyView",
    "AlertRule",
    "AlertRules",
    "AlertSignal",
    "AlertView",
    "AuditView",
    "BadExample",
    "BoundedSpec",
    "Buckets",
    "BundleRef",
    "Collection",
    "Count",
    "Curated",
    "DataSample",
    "DatasetDetail",
    "DatasetName",
    "DatasetSummary",
    "DatasetVersion",
    "DatasetView",
    "DeliveryOutcome",
    "DeliveryView",
    "DeployRequest",
    "DeployResponse",
    "DesiredPatch",
    "DesiredState",
    "DeviceChoice",
    "DeviceEventKind",
    "DeviceId",
    "DeviceStatus",
    "DeviceView",
    "DriftReport",
    "EnrolRequest",
    "EnrolResponse",
    "EvaluateRequest",
    "Event",
    "EventBatch",
    "EventFilter",
    "EventKind",
    "EventView",
    "FaultInjection",
    "FederatedReport",
    "FederatedRequest",
    "FederatedTask",
    "FeedbackAck",
    "FeedbackBatch",
    "FeedbackSpan",
    "Feeds",
    "Gate",
    "GateReadings",
    "Hardware",
    "HubEventKind",
    "Identity",
    "InferenceAnswer",
    "InferenceRequest",
    "IngestAck",
    "IntermediateTensors",
    "JobKind",
    "JobLog",
    "JobReport",
    "JobRequest",
    "JobState",
    "JobSubmit",
    "JobView",
    "Key",
    "KeyView",
    "Label",
    "LabelledWindows",
    "Login",
    "ModelView",
    "MonitorReport",
    "OffloadGate",
    "OffloadPolicy",
    "OffloadReport",
    "OptimiseRequest",
    "PolicyName",
    "PolicyRunView",
    "PolicyState",
    "PolicyTrigger",
    "PolicyView",
    "Problem",
    "ProfileView",
    "Relabel",
    "ReportedState",
    "RetrainPolicy",
    "ReviewWindow",
    "ReviewWindowView",
    "Role",
    "RolloutPlan",
    "RolloutRequest",
    "RolloutState",
    "RolloutView",
    "RowsKind",
    "RuleParams",
    "SampleBatch",
    "SampleCounts",
    "SampleImport",
    "SampleRecord",
    "SampleSelection",
    "ServingTier",
    "Severity",
    "ShadowReport",
    "Slug",
    "Split",
    "TagKey",
    "TagTerm",
    "TagValue",
    "Tags",
    "TagsPatch",
    "Target",
    "TelemetryBatch",
    "TelemetryTotals",
    "TelemetryView",
    "TensorDtype",
    "Timestamp",
    "TokenCreate",
    "TokenName",
    "TokenSecret",
    "TokenView",
    "TradeoffRequest",
    "TrainRequest",
    "UndeployResponse",
    "WaveState",
    "WaveView",
    "WebhookRequest",
    "WebhookUrl",
    "WebhookView",
    "WindowAsk",
    "WindowBatch",
    "WindowLabels",
    "WindowRequest",
    "problem_detail",
    "slug",
]

PROTOCOL = 2
OLDEST_PROTOCOL = 1
PROTOCOL_HEADER = "Edgestack-Protocol"
NEXT_CURSOR_HEADER = "Edgestack-Next-Cursor"
"""On a page of a listing that has a next one: the cursor it starts from (`after` of a listing
by name, `after_id` or, newest first, `before_id` of one by id), percent-encoded as in a URL's
query; the `Link` header with
`rel="next"` holds the whole address of that page."""

INT64_MAX = 2**63 - 1
MIN_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(9000, 1, 1, tzinfo=UTC)

_DEVICE_ID = r"^[a-z0-9][a-z0-9-]{0,62}$"
DeviceId = Annotated[str, StringConstraints(pattern=_DEVICE_ID)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_]{0,39}$")]
"""A lower-case name of a built-in kind, such as a fault a simulator injects."""
# Control characters (C0, DEL, C1) and the separators of lines and paragraphs.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _printable(limit: int, slash: bool) -> AfterValidator:
    def check(text: str) -> str:
        if not text or len(text) > limit:
            raise ValueError(f"must have 1 to {limit} characters; it has {len(text)}")
        if _UNPRINTABLE.search(text):
            raise ValueError("holds a control character; use printable characters only")
        if text != text.strip():
            raise ValueError("starts or ends with a space; remove it")
        if not slash and ("/" in text or "\\" in text or text in (".", "..")):
            raise ValueError(
                "is . or .. or holds a slash, which a URL path cannot carry; use another sign"
            )
        return text

    return AfterValidator(check)


Label = Annotated[str, _printable(64, slash=True)]
"""What a sample shows, as its user wrote it: `normal`, `Worn Bearing`, `1`; at most 64
printable characters."""
DatasetName = Annotated[str, _printable(63, slash=False)]
"""A dataset's name as its user wrote it, such as `ArrowHead`: at most 63 printable
characters, no slash (it is part of the dataset's URL)."""


def slug(name: str) -> str:
    """`name` as a `Name` (lower-case letters, digits, `_` and `-`): itself when it is one,
    else its letters and digits lower-cased and joined by `-` with 8 hex digits of its hash,
    so that two names never share a slug: where a user's name must become a file's or a
    model's name.

        slug("motors") == "motors"; slug("Worn Bearing").startswith("worn-bearing-")
    """
    if re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", name):
        return name
    words = "-".join(re.findall(r"[a-z0-9]+", name.lower()))[:50] or "x"
    return f"{words}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


Key = Annotated[str, StringConstraints(min_length=1, max_length=64)]
"""A name in a device's counters or events: a model's label, a reason for bad input."""
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
"""A count a database column can hold."""
Split = Literal["train", "test"]


def _plausible(at: datetime) -> datetime:
    if not MIN_TIME <= at <= MAX_TIME:
        raise ValueError(
            f"must lie between {MIN_TIME.date()} and {MAX_TIME.date()}; set the device's clock"
        )
    return at


Timestamp = Annotated[AwareDatetime, AfterValidator(_plausible)]
"""A time with its zone, in a range every database and time zone can hold."""

MAX_TAGS = 32
_TAG_KEY = r"[a-z][a-z0-9_.-]{0,39}"
_TAG_VALUE = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"


def _tag_key(key: str) -> str:
    if not re.fullmatch(_TAG_KEY, key):
        raise ValueError(
            f"'{key[:80]}' is no tag key; start with a lower-case letter, then up to 39 "
            "lower-case letters, digits, _ . or -"
        )
    return key


def _tag_value(value: str) -> str:
    if not re.fullmatch(_TAG_VALUE, value):
        raise ValueError(
            f"'{value[:80]}' is no tag value; start with a letter or digit, then up to 62 "
            "letters, digits, _ . or - (no space, = or ,)"
        )
    return value


TagKey = Annotated[str, StringConstraints(max_length=40), AfterValidator(_tag_key)]
"""A tag's name: lower case, starting with a letter, as in `site` or `line`."""
TagValue = Annotated[str, StringConstraints(max_length=63), AfterValidator(_tag_value)]
"""A tag's value, as in `plant-4` or `2`: no `=`, `,` or space, so a target can hold it."""
Tags = Annotated[dict[TagKey, TagValue], Field(max_length=MAX_TAGS)]
_TAG_TERM = re.compile(f"({_TAG_KEY})=({_TAG_VALUE})")


_TAG_TERM_FIX = (
    "write key=value, the key lower case (letters, digits, _ . -, up to 40), the value "
    "letters, digits, _ . - (up to 63)"
)


def _target(spec: str) -> str:
    if spec == "all" or re.fullmatch(_DEVICE_ID, spec):
        return spec
    if not spec.startswith("tag:"):
        raise ValueError(
            f"'{spec[:80]}' is no target; give a device id, tag:key=value (several joined by "
            "commas must all hold), or all"
        )
    for term in spec.removeprefix("tag:").split(","):
        _tag_term(term, f" in '{spec[:80]}'")
    return spec


def _tag_term(term: str, where: str = "") -> str:
    if not _TAG_TERM.fullmatch(term):
        raise ValueError(f"'{term[:80]}'{where} is no tag; {_TAG_TERM_FIX}")
    return term


TagTerm = Annotated[
    str,
    StringConstraints(max_length=104),
    AfterValidator(_tag_term),
    WithJsonSchema({"type": "string", "pattern": f"^{_TAG_TERM.pattern}$", "maxLength": 104}),
]
"""One tag a device carries, `key=value`, as in `site=plant-4`."""


Target = Annotated[str, StringConstraints(max_length=4096), AfterValidator(_target)]
"""Which devices: a device id, `tag:key=value[,key=value...]` (the devices carrying all of
those tags), or `all` (every enrolled device)."""


class Wire(BaseModel):
    # Unknown fields are ignored so a reader keeps working when a newer sender adds one.
    model_config = ConfigDict(extra="ignore")


class _Command(Wire):
    """A request carrying an operator's intent: a field this hub does not know is refused,
    since ignoring it would silently drop what was asked for."""

    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """The body of every error answer: one message naming what is wrong and the fix."""

    detail: str


def problem_detail(body: bytes) -> str:
    """The one-line reason out of an error answer, or its first bytes if it is no `Problem`."""
    try:
        return Problem.model_validate_json(body).detail
    except ValueError:
        return body[:500].decode(errors="replace") or "no reason given"


# -- enrolment ---------------------------------------------------------------


class Hardware(Wire):
    cores: int = Field(ge=1, le=1_000_000)
    ram_mb: int = Field(ge=1, le=INT64_MAX)
    arch: str = Field(max_length=64)
    providers: list[Key] = Field(max_length=64)


class EnrolRequest(Wire):
    """`device_token`, when the device already holds one, proves that re-enrolling its id
    is the device itself; without it, an enrolled id needs an operator's approval."""

    protocol: int = Field(default=PROTOCOL, ge=0, le=INT64_MAX)
    device_id: DeviceId
    enrol_token: str = Field(min_length=1, max_length=1024)
    hardware: Hardware
    device_token: str | None = Field(default=None, max_length=1024)


class EnrolResponse(Wire):
    device_id: DeviceId
    device_token: str
    signing_keys: list[PublicKey] = Field(
        default_factory=list,
        description="the hub's bundle signing keys, oldest first, for the device to pin",
        max_length=100,
    )


# -- the twin ----------------------------------------------------------------


class BundleRef(Wire):
    name: Name
    version: int = Field(ge=1, le=INT64_MAX)
    digest: Digest


class RuleParams(Wire):
    """When predictions become an alarm: `trigger_windows` confident fault windows in a row
    raise it, `clear_windows` normal windows in a row clear it. Sent to devices, whose agents
    of protocol 2 read `normal_label` as a slug only: so it stays one."""

    normal_label: Slug = "normal"
    min_confidence: float = Field(default=0.7, ge=0, le=1)
    trigger_windows: int = Field(default=4, ge=1, le=1000)
    clear_windows: int = Field(default=8, ge=1, le=1000)


class Collection(Wire):
    """Send every window's features to the hub, labelled, into the named dataset. Sent to
    devices, whose agents of protocol 2 read slugs only here: a dataset or label named as
    written otherwise (`Worn Bearing`) is imported, not collected."""

    label: Slug
    dataset: Name = "default"


class FaultInjection(Wire):
    """Asks a simulated source to develop a fault; real sources report it as unsupported."""

    kind: Slug
    severity: float = Field(default=1.0, ge=0, le=10)
    noise: float = Field(
        default=1.0,
        ge=0,
        le=100,
        description="vibration around a simulated machine, a multiple of its own: above 1 a "
        "changed environment (a pump installed nearby), which is no fault of the machine",
    )


_PROFILE_OVERRIDE = (
    "the device profile deployments are checked against, one of GET /api/v1/profiles; "
    "null for the one the device's hardware puts it in. The agent ignores it"
)


_RULES_OVERRIDE = (
    "alarm rules overriding those of the app the device runs; null for the app's own. "
    "Devices are sent the state with its null fields left out: an agent of protocol 1 "
    "without this meaning reads a missing field as its default"
)


MAX_REVIEW_WINDOWS = 1000


class WindowRequest(Wire):
    """Recent windows the hub asks a device to send, to be labelled and learnt from: `count`
    windows, first those its offload policy's gate found hard (hard examples, kept apart, the
    last `MAX_REVIEW_WINDOWS`), then those its running model was least sure of among those it
    classified last, sent once it has classified at least `count` (a device keeps the last
    `MAX_REVIEW_WINDOWS`). Each request has its own id; a device answers each id once."""

    request_id: int = Field(ge=1, le=INT64_MAX)
    count: int = Field(ge=1, le=MAX_REVIEW_WINDOWS)


def _http_url(what: str, fix: str, reach: str) -> AfterValidator:
    """Checks an http or https URL with a host that httpx reads, as the sender will."""

    def check(url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"'{url[:80]}' is no {what}; give an http:// or https:// URL with a host, {fix}"
            )
        try:
            # The host as the sender's HTTP client reads it: what it cannot read it cannot reach.
            httpx.URL(url).host  # noqa: B018
        except (httpx.InvalidURL, ValueError) as exc:
            raise ValueError(
                f"'{url[:80]}' is no URL {reach} ({exc}); give the receiver's host "
                "as it resolves, an IDNA name spelled right"
            ) from None
        return url

    return AfterValidator(check)


_SERVER_URL = _http_url(
    "server URL", "the edge node's address and port", "a device can send windows to"
)


OffloadGate = Literal["confidence", "margin", "entropy"]
"""How hard a window is, from its class probabilities, scored from 0 (sure) to 1: confidence,
one less the top probability; margin, one less the gap between the top two; entropy, the
probabilities' entropy over the most it can be (that of as many equal probabilities)."""
ServingTier = Literal["edge", "cloud"]
"""Who answers an offloaded window: an edge node (an agent started with `--serve`) or the hub."""
RowsKind = Literal["features", "raw"]
"""What a model's rows hold: window features, or the raw windows' samples (a model that learns
its own features takes these)."""


class OffloadPolicy(Wire):
    """Joint inference: the device answers each window with its own model and sends those its
    `gate` scores at least `threshold` to the bigger `model` on the `tier`, whose answer
    counts. `threshold` is calibrated on held-out windows so that `target_fraction` of them
    go. A server that does not answer within `timeout_s`, or cannot be reached, leaves the
    window to the device, whose answer is then marked `fallback` (`offline`)."""

    model: BundleRef = Field(description="the bigger model the server answers with")
    gate: OffloadGate = "confidence"
    target_fraction: float = Field(
        default=0.1,
        gt=0,
        le=1,
        allow_inf_nan=False,
        description="the share of held-out windows the threshold sends",
    )
    threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="windows whose gate score reaches it are offloaded; null until "
        "calibrated for target_fraction, and a device offloads nothing until then",
    )
    tier: ServingTier = "edge"
    server: Annotated[str, StringConstraints(max_length=2048), _SERVER_URL] | None = Field(
        default=None,
        description="the edge node serving model, as http://host:port; null for the "
        "cloud tier, which the hub the device reports to serves",
    )
    timeout_s: float = Field(default=1.0, gt=0, le=60, allow_inf_nan=False)
    offline: Literal["fallback"] = Field(
        default="fallback",
        description="fallback: when the server is gone the device answers alone and marks "
        "the answer fallback",
    )

    @model_validator(mode="after")
    def _edge_has_a_server(self) -> "OffloadPolicy":
        if self.tier == "edge" and self.server is None:
            raise ValueError(
                "server: the edge tier needs the edge node's address; give server as "
                "http://host:port, or choose tier cloud"
            )
        return self


_AGGREGATOR = (
    "the aggregator's Flower Fleet API the device's client connects to, as host:port; "
    "null: no client runs"
)


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"'{value[:80]}' is no aggregator address; give it as host:port, the host the "
            "device resolves and a port from 1 to 65535"
        )
    return value


class FederatedTask(Wire):
    """Federated learning on the device: the windows it keeps, labelled and never sent, and
    the aggregator its Flower client trains for. A device keeps the rows its app computes
    for every window while `keep` is set, in a local dataset of that name, and supervises a
    client of `aggregator` while that is set; the kept windows stay when either is cleared."""

    keep: Collection | None = Field(
        default=None,
        description="label the windows the device sees from now on and keep them on the "
        "device, in its local dataset of that name; null: keep no more",
    )
    aggregator: (
        Annotated[str, StringConstraints(max_length=300), AfterValidator(_host_port)] | None
    ) = Field(default=None, description=_AGGREGATOR)
    dataset: Name = Field(
        default="default", description="the local dataset the device's client trains on"
    )
    job: int | None = Field(
        default=None, ge=1, le=INT64_MAX, description="the hub job running the aggregator"
    )
    rows: RowsKind = Field(
        default="features",
        description="what a kept row holds: the window's features as the app computes them, "
        "or raw, its samples channel by channel (for a model that learns its own features)",
    )


class DesiredState(Wire):
    version: int = Field(default=0, ge=0)
    bundle: BundleRef | None = None
    shadow: BundleRef | None = Field(
        default=None,
        description="a candidate run beside `bundle` on the same windows, whose predictions "
        "act on nothing and are reported in telemetry's `shadow`; set by a rollout",
    )
    keep: list[BundleRef] = Field(
        default_factory=list,
        max_length=8,
        description="bundles the device keeps on disk besides the one it runs, so a rollout "
        "can go back to them until it is committed",
    )
    send_windows: WindowRequest | None = Field(
        default=None, description="recent windows to send for labelling, once per request id"
    )
    stopped: bool = Field(
        default=False,
        description="the app stops reading its sources and running its model; the device "
        "keeps following its twin and reporting",
    )
    rules: RuleParams | None = Field(default=None, description=_RULES_OVERRIDE)
    collect: Collection | None = None
    fault: FaultInjection | None = None
    telemetry_interval_s: float = Field(default=5.0, ge=0.2, le=3600)
    profile: str | None = Field(default=None, description=_PROFILE_OVERRIDE)
    offload: OffloadPolicy | None = Field(
        default=None, description="joint inference with a bigger model on a server; null: none"
    )
    federated: FederatedTask | None = Field(
        default=None,
        description="federated learning: windows kept on the device and the aggregator its "
        "client trains for; null: none",
    )

    def for_protocol(self, protocol: int) -> dict[str, Any]:
        """This state as an agent speaking `protocol` is sent it. Nulls are left out: an agent
        of protocol 1 reads a missing field as its default but refuses a null `rules`. Protocol
        1 also refused fields it did not know, and could not act on them: they are left out."""
        exclude = _SINCE_PROTOCOL_2 if protocol < 2 else None
        return self.model_dump(mode="json", exclude_none=True, exclude=exclude)


_SINCE_PROTOCOL_2: dict[str, Any] = {
    "shadow": True,
    "keep": True,
    "send_windows": True,
    "stopped": True,
    "fault": {"noise"},
    "offload": True,
    "federated": True,
}


class DesiredPatch(_Command):
    """A change to a device's desired state. Fields left out stay as they are;
    fields sent as null are cleared."""

    rules: RuleParams | None = Field(
        default=None, description="alarm rules overriding the app's; null for the app's own"
    )
    collect: Collection | None = None
    fault: FaultInjection | None = None
    telemetry_interval_s: float | None = Field(default=None, ge=0.2, le=3600)
    profile: str | None = Field(default=None, max_length=64, description=_PROFILE_OVERRIDE)
    stopped: bool | None = Field(
        default=None, description="stop the app (true) or start it again (false or null)"
    )
    offload: OffloadPolicy | None = Field(
        default=None,
        description="joint inference: which windows go to which server's bigger model; null "
        "for none. A policy without a threshold offloads nothing: calibrate it first "
        "(`edgestack offload set` does)",
    )
    federated: FederatedTask | None = Field(
        default=None,
        description="windows to keep on the device, the aggregator to train for; null: none "
        "(`edgestack fl start` sets it for a run's devices)",
    )


# Generous: a real source's channels are named after its topics or ports.
_Word = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class Feeds(Wire):
    """What a device can feed a model: its source's channels at its rate, and the feature
    extractors it has registered. Deployments are checked against it."""

    sensors: list[_Word] = Field(max_length=1024)
    # Finite: an infinite rate would be stored, then read back as null by every client.
    rate_hz: float = Field(gt=0, allow_inf_nan=False)
    extractors: list[_Word] = Field(max_length=1024)


DeviceStatus = Literal["idle", "collecting", "running", "stopped", "error", "failed"]

Role = Literal["viewer", "operator", "admin"]
"""What a person's or an outside application's token may do, each role all that the one
before it may: a viewer reads, an operator also controls devices, models and data, an admin
also manages tokens, webhooks, signing keys and workers."""
ROLES: tuple[Role, ...] = get_args(Role)


class FederatedReport(Wire):
    """A device's side of federated learning (`DesiredState.federated`), as it stands."""

    kept: Count = Field(
        default=0, description="rows held in the local dataset the device keeps windows in now"
    )
    aggregator: str | None = Field(
        default=None, max_length=300, description="whom its Flower client runs for; null: none"
    )
    client_starts: Count = Field(
        default=0,
        description="times its client was started for that aggregator; more than "
        "one: it exited and was started again",
    )


class ReportedState(Wire):
    desired_version: Count
    bundle: BundleRef | None = None
    status: DeviceStatus = Field(
        description="failed: the desired bundle kept failing at run time and was given up; "
        "stopped: the app was stopped (DesiredState.stopped)"
    )
    error: str | None = Field(default=None, max_length=4000)
    hardware: Hardware
    feeds: Feeds | None = Field(default=None, description="what the device can feed a model")
    rules: RuleParams | None = Field(
        default=None,
        description="the alarm rules the device applies: desired.rules, else its app's; "
        "null from agents that do not say",
    )
    shadow: BundleRef | None = Field(
        default=None, description="the candidate it runs in shadow (desired.shadow), if any"
    )
    federated: FederatedReport | None = Field(
        default=None, description="windows kept and the Flower client run (desired.federated)"
    )


# -- data from the device ----------------------------------------------------


class BadExample(Wire):
    """One piece of bad input a device kept for inspection, cut to its first 200 characters."""

    reason: str = Field(max_length=64)
    example: str = Field(max_length=200)


_MAX_KEYS = 256
_MAX_LATENCY_MS = 3_600_000.0
_MAX_BUCKET = 1023
_MAX_FEATURES = 4096
_MAX_BINS = 64

Buckets = Annotated[
    dict[Annotated[int, Field(ge=0, le=_MAX_BUCKET)], Count], Field(max_length=_MAX_BUCKET + 1)
]
"""A latency histogram as its non-empty buckets, index to count (`LatencyHistogram.sparse`)."""
_Score = Annotated[float, Field(ge=0, allow_inf_nan=False)]
_LatencyMs = Annotated[float, Field(ge=0, le=_MAX_LATENCY_MS)]


class DriftReport(Wire):
    """Input drift over one interval against the running bundle's `Manifest.reference`: per
    feature the live windows counted in each reference bin (a sketch, never the rows), and
    the PSI and KS scores those counts give; null where a feature saw no finite value."""

    counts: list[Annotated[list[Count], Field(max_length=_MAX_BINS)]] = Field(
        max_length=_MAX_FEATURES
    )
    psi: list[_Score | None] = Field(max_length=_MAX_FEATURES)
    ks: list[Annotated[float, Field(ge=0, le=1)] | None] = Field(max_length=_MAX_FEATURES)


class MonitorReport(Wire):
    """What the device's monitoring saw of the running model over one interval."""

    latency: Buckets = Field(default_factory=dict, description="per model call")
    p50_ms: _LatencyMs | None = None
    p95_ms: _LatencyMs | None = None
    p99_ms: _LatencyMs | None = None
    throughput: _Score = Field(default=0.0, description="windows predicted per second")
    cpu_share: _Score = Field(default=0.0, description="CPU time over the interval, in cores")
    rss_bytes: Count = Field(default=0, description="the agent's resident memory at the end")
    confidence: list[Count] = Field(
        default_factory=list,
        max_length=_MAX_BINS,
        description="windows per bin of the chosen label's probability, equal bins over [0, 1]",
    )
    drift: DriftReport | None = Field(
        default=None, description="null when the bundle carries no reference"
    )
    changes: dict[Key, Count] = Field(
        default_factory=dict,
        max_length=_MAX_KEYS,
        description="change-detector alarms in the interval, per watched signal",
    )
    anomaly_max: _Score | None = Field(default=None, description="sensor-stream anomaly score")
    anomaly_mean: _Score | None = None


class ShadowReport(Wire):
    """How the shadow candidate (`DesiredState.shadow`) did beside the running model, on the
    same windows, over one interval."""

    bundle: BundleRef
    windows: Count = Field(description="windows both models classified")
    agreed: Count = Field(description="of those, where both chose the same label")
    mean_confidence: Annotated[float, Field(ge=0, le=1)] | None = None
    latency: Buckets = Field(default_factory=dict, description="the candidate's, per call")
    p99_ms: _LatencyMs | None = None
    failures: Count = Field(default=0, description="chunks on which the candidate raised")
    predictions: dict[Key, Count] = Field(
        default_factory=dict,
        max_length=_MAX_KEYS,
        description="the windows the candidate gave each label: its accuracy on feedback",
    )
    drift_psi: _Score | None = Field(
        default=None, description="the largest PSI over features against its own reference"
    )
    drift: DriftReport | None = Field(
        default=None,
        description="the windows per bin of its own reference, which add up over intervals "
        "and devices (a PSI over one short interval is noise); null without a reference",
    )


class OffloadReport(Wire):
    """Joint inference (`DesiredState.offload`) over one interval: the windows sent to a
    server, whose answers counted and which fell back to the device's own."""

    windows: Count = Field(description="windows whose gate score reached the threshold")
    answered: dict[ServingTier, Count] = Field(
        default_factory=dict, description="windows whose answer came from each tier in time"
    )
    predictions: dict[Key, Count] = Field(
        default_factory=dict,
        max_length=_MAX_KEYS,
        description="the labels those answers gave, which count for their windows",
    )
    fallbacks: Count = Field(
        default=0,
        description="windows left to the device's own answer: no answer in time, no server, "
        "or a full queue",
    )
    uplink_bytes: Count = Field(default=0, description="bytes the requests to servers took")
    latency_ms_p50: _LatencyMs | None = Field(
        default=None, description="a request's round trip, answered ones only"
    )
    latency_ms_p95: _LatencyMs | None = None


class TelemetryBatch(Wire):
    """Aggregates over one interval. `seq` counts a device's batches from 1 without gaps,
    so the hub can tell a lost batch from one that never existed."""

    batch_id: UUID
    seq: int = Field(ge=1, le=INT64_MAX)
    start: Timestamp
    end: Timestamp
    windows: Count
    predictions: dict[Key, Count] = Field(default_factory=dict, max_length=_MAX_KEYS)
    mean_confidence: float | None = Field(default=None, ge=0, le=1)
    latency_ms_p50: float | None = Field(default=None, ge=0, le=_MAX_LATENCY_MS)
    latency_ms_p95: float | None = Field(default=None, ge=0, le=_MAX_LATENCY_MS)
    bad_input: dict[Key, Count] = Field(
        default_factory=dict,
        max_length=_MAX_KEYS,
        description="bad input counted per reason: nan, time_backwards, ...",
    )
    bad_examples: list[BadExample] = Field(default_factory=list, max_length=100)
    raw_bytes: Count = Field(description="what streaming the raw samples would have cost")
    uplink_bytes: Count = Field(description="bytes this device sent to the hub")
    bundle_digest: Digest | None = None
    failed_chunks: Count = Field(
        default=0, description="chunks whose steps, extractors or model raised; skipped"
    )
    chunks: Count | None = Field(
        default=None, description="chunks the hot path ran, failed ones too; null: not said"
    )
    outbox_dropped: Count = Field(
        default=0, description="messages the full outbox dropped, since the device began"
    )
    dead_lettered: Count = Field(
        default=0, description="messages the hub refused for good, since the device began"
    )
    outbox_pending: Count = Field(
        default=0, description="messages waiting in the device's outbox at the cut"
    )
    monitoring: MonitorReport | None = Field(
        default=None, description="null while no model runs or monitoring is off"
    )
    shadow: ShadowReport | None = Field(default=None, description="null while none runs")
    offload: OffloadReport | None = Field(
        default=None, description="null while the device has no offload policy"
    )


DeviceEventKind = Literal[
    "alarm_raised",
    "alarm_cleared",
    "model_loaded",
    "error",
    "bundle_refused",  # digest or signature check failed; the running model stays
    "load_failed",  # a verified bundle this device cannot run; not retried until desired changes
    "model_failed",  # repeated failures at run time; fell back to the previous bundle
    "outbox_dropped",  # the outbox was full and dropped telemetry, counted
]
HubEventKind = Literal[
    "device_enrolled",
    "device_reenrolled",
    "reenrol_refused",
    "store_corrupt",
    "alert_raised",
    "alert_cleared",
    "rollout_started",
    "rollout_wave_started",  # a wave's devices run the candidate in shadow
    "rollout_wave_promoted",  # its gate held: the wave's devices run the candidate
    "rollout_wave_held",  # its gate lacks data: waits, never promotes
    "rollout_rolled_back",  # a gate failed or too many devices failed: back to the previous
    "rollout_paused",
    "rollout_resumed",
    "rollout_aborted",
    "rollout_completed",  # every wave promoted: committed
    "job_started",
    "job_succeeded",
    "job_failed",
    "job_cancelled",
    "job_progress",  # a milestone of a running job, as a federated job's rounds
    "policy_triggered",
    "policy_step",  # a run of a policy moved on: labelling, training, optimising, rolling out
    "policy_succeeded",
    "policy_failed",
    "retention_run",  # a retention run rolled up or removed rows past their age, counted
]
EventKind = DeviceEventKind | HubEventKind
HUB_EVENT_KINDS: frozenset[str] = frozenset(get_args(HubEventKind))
"""The kinds of event only the hub raises; a device that sends one is refused."""


class Event(Wire):
    event_id: UUID
    at: Timestamp
    kind: EventKind
    severity: Literal["info", "warning", "critical"]
    label: Key | None = None
    confidence: float | None = Field(default=None, ge=0, le=1)
    message: str = Field(max_length=2000)
    bundle_digest: Digest | None = None


class EventBatch(Wire):
    batch_id: UUID
    events: list[Event] = Field(min_length=1, max_length=1000)


_FLOAT32_MAX = 3.4028234663852886e38
_Feature = Annotated[float, Field(ge=-_FLOAT32_MAX, le=_FLOAT32_MAX, allow_inf_nan=False)]
"""A finite value that training's float32 columns can hold."""


class DataSample(Wire):
    at: Timestamp
    label: Label
    features: list[_Feature] = Field(min_length=1, max_length=100_000)
    split: Split | None = Field(
        default=None,
        description="imported samples only: the split the data set packages it in; the hub's "
        "hash split when left out, and always for a device's samples",
    )


def _bounded_spec(spec: InputSpec) -> InputSpec:
    if len(spec.model_dump_json()) > _MAX_SPEC_BYTES:
        raise ValueError(f"is longer than {_MAX_SPEC_BYTES} bytes as JSON; name fewer features")
    if not math.isfinite(spec.rate_hz):
        raise ValueError("rate_hz must be finite")
    for field in ("window", "hop"):
        if getattr(spec, field) > INT64_MAX:
            raise ValueError(
                f"{field} is a count of samples and must fit int64 (at most {INT64_MAX})"
            )
    return spec


_MAX_SPEC_BYTES = 1024 * 1024
BoundedSpec = Annotated[InputSpec, AfterValidator(_bounded_spec)]
"""An input spec a device may send: finite, and at most a mebibyte as JSON."""


class SampleBatch(Wire):
    batch_id: UUID
    spec: BoundedSpec
    samples: list[DataSample] = Field(min_length=1, max_length=10_000)
    dataset: DatasetName = Field(default="default", description="Collection.dataset when collected")


class ReviewWindow(Wire):
    """A window the running model classified: when, its features, and the label the model
    chose with that label's probability."""

    at: Timestamp
    features: list[_Feature] = Field(min_length=1, max_length=100_000)
    predicted: Key
    confidence: float = Field(ge=0, le=1)


class WindowBatch(Wire):
    """A device's answer to `DesiredState.send_windows`: windows of one input spec, classified
    by the bundle `bundle_digest`."""

    batch_id: UUID
    request_id: int = Field(ge=1, le=INT64_MAX)
    spec: BoundedSpec
    bundle_digest: Digest
    windows: list[ReviewWindow] = Field(min_length=1, max_length=MAX_REVIEW_WINDOWS)


class WindowAsk(_Command):
    """Ask a device for recent windows to label: its `count` least confident."""

    count: int = Field(default=100, ge=1, le=MAX_REVIEW_WINDOWS)


class ReviewWindowView(Wire):
    id: int
    device_id: DeviceId
    request_id: int
    bundle_digest: Digest
    spec: str = Field(description="InputSpec fingerprint")
    at: datetime
    predicted: str
    confidence: float
    label: Label | None = Field(description="null until labelled")
    dataset: DatasetName | None = Field(description="where the labelled window became a sample")
    features: list[float]


class WindowLabels(_Command):
    """Label windows sent for review; each becomes a sample of `dataset` with its label."""

    ids: list[Annotated[int, Field(ge=1, le=INT64_MAX)]] = Field(
        min_length=1, max_length=MAX_REVIEW_WINDOWS
    )
    label: Label
    dataset: DatasetName


class LabelledWindows(Wire):
    labelled: int = Field(description="windows labelled now")
    samples: int = Field(description="samples added to the dataset")


class SampleImport(_Command):
    """Labelled feature rows recorded elsewhere, uploaded into a dataset by an admin.
    `device_id` names where they came from; it need not be an enrolled device."""

    batch_id: UUID
    device_id: DeviceId = "import"
    spec: BoundedSpec
    samples: list[DataSample] = Field(min_length=1, max_length=10_000)


# -- joint inference ---------------------------------------------------------

MAX_INFERENCE_ROWS = 1024
_MAX_INFERENCE_VALUES = 1_000_000


TensorDtype = Literal["float32", "int8"]
"""How a split net's head gives its intermediate tensor: float32, or int8 standing for
`scale * (q - zero_point)`, a quarter of the bytes."""

_TENSOR_ITEM_BYTES = {"float32": 4, "int8": 1}
_MAX_TENSOR_BYTES = 4 * _MAX_INFERENCE_VALUES


class IntermediateTensors(Wire):
    """A split net's intermediate tensors, one per window, as its head on the device gives
    them, for its tail on a server: `shape` is one window's, `data` every window's values in
    C order, little-endian, base64. An int8 tensor carries the `scale` and `zero_point` of
    the head's manifest (`SplitPlan`), which the tail checks against its own."""

    dtype: TensorDtype
    shape: list[Annotated[int, Field(ge=1, le=_MAX_INFERENCE_VALUES)]] = Field(
        min_length=1, max_length=4, description="one window's tensor"
    )
    data: str = Field(
        max_length=4 * (_MAX_TENSOR_BYTES // 3 + 1),
        pattern=r"^[A-Za-z0-9+/]*={0,2}$",
        description="the windows' values, C order, little-endian, base64",
    )
    scale: float | None = Field(default=None, gt=0, le=_FLOAT32_MAX, allow_inf_nan=False)
    zero_point: int | None = Field(default=None, ge=-128, le=127)

    @model_validator(mode="after")
    def _whole_windows(self) -> "IntermediateTensors":
        if (self.dtype == "int8") != (self.scale is not None and self.zero_point is not None):
            raise ValueError(
                "scale and zero_point: give both for an int8 tensor, as the head's manifest "
                "records them, and neither for float32"
            )
        per_window = math.prod(self.shape) * _TENSOR_ITEM_BYTES[self.dtype]
        size = len(self.raw())
        if size == 0 or size % per_window:
            raise ValueError(
                f"data: {size} bytes is no whole number of {self.dtype} windows of shape "
                f"{self.shape} ({per_window} bytes each); send each window's whole tensor"
            )
        if size // per_window > MAX_INFERENCE_ROWS:
            raise ValueError(
                f"data: {size // per_window} windows, at most {MAX_INFERENCE_ROWS}; send fewer "
                "windows a request"
            )
        return self

    @property
    def windows(self) -> int:
        """How many windows `data` holds."""
        return len(self.raw()) // (math.prod(self.shape) * _TENSOR_ITEM_BYTES[self.dtype])

    def raw(self) -> bytes:
        """`data` decoded."""
        try:
            return base64.b64decode(self.data, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"data: no base64 ({exc}); encode the tensor's bytes") from None


_NO_ROWS = "empty; send at least one row, or a split tail's tensors"


class InferenceRequest(Wire):
    """Windows a device offloads to a server (`OffloadPolicy`), one row each, for `model` to
    answer. Rows hold features, unless the model takes raw windows: a server refuses raw rows
    for a model of features, so raw samples leave a device only for a model that needs them.
    For the tail of a split net, the device sends its head's `tensors` instead of rows."""

    model: BundleRef
    input: RowsKind = Field(default="features", description="what rows hold")
    # Before rows, so that rows sent empty are refused as rows when no tensors came either.
    tensors: IntermediateTensors | None = Field(
        default=None, description="a split net's tail: the head's tensors, instead of rows"
    )
    rows: list[list[_Feature]] = Field(default_factory=list, max_length=MAX_INFERENCE_ROWS)

    @field_validator("rows")
    @classmethod
    def _one_width(cls, rows: list[list[float]], info: ValidationInfo) -> list[list[float]]:
        if not rows:
            if "tensors" in info.data and info.data["tensors"] is None:
                raise ValueError(_NO_ROWS)
            return rows
        width = len(rows[0])
        for i, row in enumerate(rows):
            if len(row) != width:
                raise ValueError(
                    f"rows[{i}] has {len(row)} values, rows[0] {width}; send rows of one width"
                )
        if width * len(rows) > _MAX_INFERENCE_VALUES:
            raise ValueError(
                f"holds {width * len(rows)} values, at most {_MAX_INFERENCE_VALUES}; "
                "send fewer rows a request"
            )
        return rows

    @model_validator(mode="after")
    def _rows_or_tensors(self) -> "InferenceRequest":
        if not self.rows and self.tensors is None:
            raise ValueError(f"rows: {_NO_ROWS}")
        if self.rows and self.tensors is not None:
            raise ValueError(
                "tensors: sent with rows; send rows for a whole model, tensors for a split "
                "net's tail, not both"
            )
        return self


class InferenceAnswer(Wire):
    """A server's answer to an `InferenceRequest`: a label and its probability per row, in
    order, which tier answered, and how long its model took for all rows."""

    labels: list[Label] = Field(max_length=MAX_INFERENCE_ROWS)
    confidences: list[Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]] = Field(
        max_length=MAX_INFERENCE_ROWS
    )
    tier: ServingTier
    latency_ms: float = Field(ge=0, le=3_600_000, allow_inf_nan=False)


class IngestAck(Wire):
    batch_id: UUID
    accepted: int
    duplicate: bool


# -- control API views -------------------------------------------------------


class TelemetryTotals(Wire):
    batches: int = 0
    last_seq: int = 0
    windows: int = 0
    predictions: dict[str, int] = Field(default_factory=dict)
    bad_input: dict[str, int] = Field(default_factory=dict)
    bad_examples: list[BadExample] = Field(
        default_factory=list, description="the newest examples of bad input"
    )
    raw_bytes: int = 0
    uplink_bytes: int = 0
    failed_chunks: int = 0
    outbox_dropped: int = Field(default=0, description="the device's latest total")
    dead_lettered: int = Field(default=0, description="the device's latest total")
    latest_predictions: dict[str, int] = Field(
        default_factory=dict, description="the predictions of the latest batch: what it sees now"
    )
    latency_ms_p50: float | None = Field(default=None, description="of the latest batch")
    latency_ms_p95: float | None = Field(default=None, description="of the latest batch")
    mean_confidence: float | None = Field(default=None, description="of the latest batch")
    outbox_pending: int = Field(default=0, description="the device's outbox depth, latest")
    # From the latest batch's `monitoring`: null while it has none (no model, monitoring off).
    p50_ms: float | None = Field(default=None, description="per model call, latest monitoring")
    p95_ms: float | None = Field(default=None, description="per model call, latest monitoring")
    p99_ms: float | None = Field(default=None, description="per model call, latest monitoring")
    throughput: float | None = Field(default=None, description="windows/s, latest monitoring")
    cpu_share: float | None = Field(default=None, description="cores busy, latest monitoring")
    rss_bytes: int | None = Field(default=None, description="agent memory, latest monitoring")
    anomaly_max: float | None = Field(
        default=None, description="largest sensor-stream anomaly score, latest monitoring"
    )
    anomaly_mean: float | None = Field(default=None, description="latest monitoring")
    changes: dict[str, int] = Field(
        default_factory=dict,
        description="change-detector alarms per watched signal, summed since enrolment",
    )
    # Input drift summed over the device's latest batches of the bundle it runs, until they
    # cover enough windows (the hub's DRIFT_WINDOWS): PSI over a handful of windows is noise.
    drift_windows: int = Field(
        default=0, description="windows the rolling drift covers; 0 when there is none"
    )
    drift_psi: float | None = Field(
        default=None,
        description="the largest PSI over features of the rolling drift; null until it "
        "covers enough windows, or while the running bundle has no reference",
    )
    drift_ks: float | None = Field(default=None, description="the largest KS, likewise")
    drift_psi_by_feature: dict[str, float] = Field(
        default_factory=dict, description="PSI per feature name of the rolling drift"
    )
    drift_ks_by_feature: dict[str, float] = Field(
        default_factory=dict, description="KS per feature name of the rolling drift"
    )
    # Joint inference summed from the batches' `offload` reports since enrolment.
    offloaded: int = Field(default=0, description="windows the offload gate sent to a server")
    offload_answered: dict[ServingTier, int] = Field(
        default_factory=dict, description="offloaded windows a tier's answer counted for"
    )
    offload_fallbacks: int = Field(
        default=0, description="offloaded windows left to the device's own answer"
    )
    offload_uplink_bytes: int = Field(default=0, description="bytes the requests took")


class DeviceView(Wire):
    device_id: DeviceId
    enrolled_at: datetime
    last_seen: datetime | None
    desired: DesiredState
    reported: ReportedState | None
    telemetry: TelemetryTotals
    profile: str = Field(
        description="the profile deployments are checked against: desired.profile when set, "
        "else the one its reported hardware puts it in"
    )
    reenrolment: Literal["waiting", "approved"] | None = Field(
        default=None,
        description="waiting: an enrolment of this id without its device token was refused "
        "and awaits an operator's approval; approved: the next enrolment will be let through",
    )
    tags: Tags = Field(default_factory=dict, description="what deployments can target it by")


class TagsPatch(_Command):
    """Tags to give a device (a key it carries takes the new value) and keys to take away."""

    tags: Tags = Field(default_factory=dict)
    remove: list[TagKey] = Field(default_factory=list, max_length=MAX_TAGS)


class ProfileView(Wire):
    """A class of device: the budgets one model must fit. A bundle's measured footprint is
    from the reference machine; `speed_factor` scales its latency to the device."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    flash_bytes: int = Field(gt=0, description="room for one model")
    ram_bytes: int = Field(gt=0, description="memory one model may take while it runs")
    latency_ms: float = Field(gt=0, description="p99 per window the app can wait for")
    speed_factor: float = Field(
        gt=0, description="device latency over the reference machine's, for the same model"
    )


class Login(_Command):
    """What the dashboard's login form sends: an API token, which the hub keeps with the login
    whose random id it sets in a cookie."""

    token: str = Field(min_length=1, max_length=256, description="an API token")


class Identity(Wire):
    """Who a token speaks for."""

    name: str
    role: Role


def _token_name(name: str) -> str:
    if not re.fullmatch(_DEVICE_ID, name):
        raise ValueError(
            f"'{name[:80]}' is no token name; use lower-case letters, digits and dashes, "
            "starting with a letter or digit, at most 63 characters, e.g. ci-deployer"
        )
    return name


TokenName = Annotated[str, StringConstraints(max_length=63), AfterValidator(_token_name)]
"""What an API token is called, in the audit log and `edgestack tokens`: a slug such as
`ci-deployer`."""


class TokenCreate(_Command):
    """A named API token to make: its role and, when given, how many days it lives."""

    name: TokenName
    role: Role
    expires_days: int | None = Field(
        default=None, ge=1, le=3650, description="days until it stops working; never if left out"
    )


class TokenView(Wire):
    """A named API token, without its secret, which the hub keeps only hashed."""

    name: str
    role: Role
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


class TokenSecret(TokenView):
    """A token just made, with its secret: shown this once, never again."""

    token: str


class AuditView(Wire):
    """A control action as the audit log holds it: who (`actor`, `role`), what (`action`,
    the operation id, on `target`), when, and the state it changed, `before` (null for a
    create) and `after`."""

    id: int
    at: datetime
    actor: str
    role: Role
    action: str
    target: str | None = None
    before: JsonValue = None
    after: JsonValue = None


class KeyView(Wire):
    """One of the hub's bundle signing keys; the active one signs new registrations."""

    key: PublicKey
    active: bool


class ModelView(Wire):
    name: Name
    version: int
    digest: Digest
    size_bytes: int
    registered_at: datetime
    manifest: Manifest


class DeviceChoice(_Command):
    """Which devices: name them in `devices`, set `all`, or give targets in `to`; one of the
    three."""

    devices: list[DeviceId] | None = Field(
        default=None, max_length=10_000, description="the devices; leave out with all or to"
    )
    all: bool = Field(default=False, description="every enrolled device")
    to: list[Target] | None = Field(
        default=None,
        max_length=100,
        description="targets, their devices taken together: device ids, tag:key=value, all; "
        "instead of devices or all",
    )


class DeployRequest(DeviceChoice):
    """Which model version goes to which devices."""

    model: Name
    version: int | None = Field(
        default=None, ge=1, le=INT64_MAX, description="latest when left out"
    )
    force: bool = Field(
        default=False,
        description="skip the checks that each device can feed the bundle and that its "
        "footprint fits the device's profile",
    )


class UndeployResponse(Wire):
    devices: list[DeviceId] = Field(description="the devices that now run no model")


class DeployResponse(Wire):
    bundle: BundleRef
    devices: list[DeviceId]


class EventView(Wire):
    id: int
    device_id: DeviceId | None = Field(description="the device it concerns; null for the hub's own")
    received_at: datetime
    event: Event


Severity = Literal["info", "warning", "critical"]
"""How bad an event is, least first."""


class EventFilter(Wire):
    """Which events a listing, a stream or a webhook takes: those meeting every condition
    given; none given, every event."""

    device: DeviceId | None = Field(default=None, description="only this device's events")
    tag: list[TagTerm] = Field(
        default_factory=list,
        max_length=MAX_TAGS,
        description="only events of devices carrying each of these tags, key=value; repeat",
    )
    kind: list[EventKind] = Field(
        default_factory=list,
        max_length=len(get_args(DeviceEventKind)) + len(get_args(HubEventKind)),
        description="only events of these kinds; repeat",
    )
    severity: Severity | None = Field(
        default=None, description="only events of this severity or worse"
    )


WebhookUrl = Annotated[
    str,
    StringConstraints(max_length=2048),
    _http_url("webhook URL", "to which the hub can POST each event", "the hub can POST to"),
]
"""Where a webhook's events go: an http or https URL."""


class WebhookRequest(EventFilter):
    """A subscription to ask for: the events `EventFilter` takes are POSTed to `url`."""

    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl
    description: str = Field(default="", max_length=200, description="what it is for")


class WebhookView(WebhookRequest):
    """A subscription. `secret` signs its deliveries and is shown only in the answer that
    created it."""

    model_config = ConfigDict(extra="ignore")

    # Unchecked: a URL an older hub accepted is still shown, to be seen and removed.
    url: Annotated[str, StringConstraints(max_length=2048)]
    id: int
    created_at: datetime
    delivered_id: int = Field(description="the last event id handled, delivered or given up on")
    secret: str | None = Field(
        default=None, description="whsec_<base64>, shown once when created; null after"
    )


DeliveryOutcome = Literal["delivered", "retrying", "failed"]


class DeliveryView(Wire):
    """One attempt to deliver an event to a webhook."""

    id: int
    webhook_id: int
    event_id: int
    message_id: str = Field(description="the webhook-id header, the same on every retry")
    attempt: int = Field(ge=1)
    at: datetime
    status_code: int | None = Field(description="the receiver's answer; null when none came")
    error: str | None = Field(description="why no answer came, or why it counts as refused")
    duration_ms: float
    outcome: DeliveryOutcome = Field(
        description="delivered; retrying (at next_attempt_at); failed: no attempts left"
    )
    next_attempt_at: datetime | None


class TelemetryView(Wire):
    """One telemetry batch as the hub stored it: its id, for paging, and when it came."""

    id: int
    device_id: DeviceId
    received_at: datetime
    batch: TelemetryBatch


class SampleRecord(Wire):
    id: int | None = Field(
        default=None, description="the hub's id, for paging with after_id and before_id"
    )
    device_id: DeviceId
    at: datetime
    label: Label
    spec: str = Field(description="InputSpec fingerprint")
    features: list[float]


class DatasetView(Wire):
    specs: dict[str, InputSpec]
    samples: list[SampleRecord]


class SampleCounts(Wire):
    total: int = 0
    labels: dict[str, int] = Field(default_factory=dict)
    devices: dict[str, int] = Field(default_factory=dict)
    splits: dict[str, int] = Field(default_factory=dict)


class DatasetVersion(Wire):
    """A frozen, immutable snapshot of a dataset: every sample it held when frozen, all of
    one input spec, exported as a Parquet file."""

    version: int
    frozen_at: datetime
    spec: str = Field(description="InputSpec fingerprint")
    counts: SampleCounts


class SampleSelection(_Command):
    """Which samples of a dataset a change takes: those matching every selector given, and at
    least one must be. `ids` are the samples' ids as `GET /api/v1/samples` lists them."""

    device: DeviceId | None = Field(default=None, description="only this device's samples")
    since: Timestamp | None = Field(default=None, description="only samples taken at or after")
    until: Timestamp | None = Field(default=None, description="only samples taken before")
    label: Label | None = Field(default=None, description="only samples with this label")
    ids: list[Annotated[int, Field(ge=1, le=INT64_MAX)]] | None = Field(
        default=None, min_length=1, max_length=10_000, description="only these samples"
    )
    spec: str | None = Field(
        default=None,
        max_length=64,
        description="only samples of this input spec fingerprint; needed when the selection "
        "holds samples of several, since a version holds one",
    )


class Relabel(SampleSelection):
    """Give the selected samples another label."""

    to: Label = Field(description="the label they get")


class Curated(Wire):
    """What a relabelling or removal changed, and the version it froze: older versions keep
    the samples as they were."""

    changed: Count = Field(description="samples relabelled or removed")
    version: DatasetVersion


class DatasetSummary(Wire):
    name: DatasetName
    counts: SampleCounts = Field(description="the samples it holds now, frozen or not")
    versions: int
    latest: int | None


class DatasetDetail(Wire):
    name: DatasetName
    counts: SampleCounts = Field(description="the samples it holds now, frozen or not")
    specs: dict[str, InputSpec] = Field(description="by fingerprint: its samples' specs")
    versions: list[DatasetVersion]


class TrainRequest(_Command):
    """Fit `model` (a registered trainer, or `auto` to try the classifiers) on version
    `version` of `dataset` (the latest when left out), the hub's test split held out, and
    register it as the next version of `name` (the dataset's name when left out): what
    `edgestack train` does, and a train job."""

    kind: Literal["train"] = "train"
    dataset: DatasetName
    model: str = Field(
        default="auto", min_length=1, max_length=64, description="a trainer, or auto"
    )
    version: int | None = Field(
        default=None, ge=1, le=INT64_MAX, description="latest when left out"
    )
    freeze: bool = Field(
        default=False,
        description="first freeze what the dataset holds now as its next version, and train "
        "on that; version must be left out",
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="the trainer's parameters; none with auto"
    )
    cv: int = Field(default=0, ge=0, le=100, description="cross-validation folds first")
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    budget_s: float = Field(default=120.0, ge=0, le=86_400, description="auto's time")
    name: Name | None = Field(
        default=None, description="the dataset's name (as a slug) when left out"
    )
    normal_label: Label = Field(
        default=RuleParams().normal_label, description="what an anomaly detector learns"
    )
    spec: BoundedSpec | None = Field(
        default=None,
        description="the model's input spec, its features computed from a dataset of raw "
        "windows; the dataset's own spec when left out (for a trainer that takes no raw "
        "windows, time_stats and band_energies of a raw one)",
    )

    @property
    def summary(self) -> str:
        """What the job does, in a few words."""
        return f"{self.model} on {self.dataset}"


class OptimiseRequest(_Command):
    """Make version `version` of registered model `model` (the latest when left out) fit
    device profile `profile`, losing at most `gate_pts` accuracy points, and register the
    best candidate as its next version: what `edgestack optimize` does, and an optimise job."""

    kind: Literal["optimise"] = "optimise"
    model: Name
    profile: str = Field(min_length=1, max_length=64)
    version: int | None = Field(
        default=None, ge=1, le=INT64_MAX, description="latest when left out"
    )
    gate_pts: float = Field(default=1.0, ge=0, le=100)

    @property
    def summary(self) -> str:
        """What the job does, in a few words."""
        return f"{self.model} for {self.profile}"


class EvaluateRequest(_Command):
    """Measure version `version` of registered model `model` (the latest when left out) on
    version `dataset_version` of `dataset`: by default the dataset version it was trained on,
    or the latest version of another dataset. Its test split rows are scored, or every row
    with `all_rows`: what `edgestack evaluate` does, and an evaluate job."""

    kind: Literal["evaluate"] = "evaluate"
    model: Name
    version: int | None = Field(
        default=None, ge=1, le=INT64_MAX, description="latest when left out"
    )
    dataset: DatasetName | None = Field(default=None, description="the model's own when left out")
    dataset_version: int | None = Field(default=None, ge=1, le=INT64_MAX)
    all_rows: bool = Field(default=False, description="score every row, not the test split")

    @property
    def summary(self) -> str:
        """What the job does, in a few words."""
        return f"{self.model} on {self.dataset or 'its dataset'}"


class FederatedRequest(_Command):
    """Train `model` by federated learning on the windows the devices of `to` keep in their
    local dataset `dataset`: the hub runs Flower's aggregator for `rounds` rounds of
    `strategy`, each device's client trains on its own windows and sends model updates only.
    A round waits `round_timeout` seconds at most, so a device that drops out costs one
    timeout; training starts once `min_clients` are connected. The aggregated model is
    registered as the next version of `name` with its lineage, and rolled out by `rollout`
    when given: what `edgestack fl start` does, and a federated job."""

    kind: Literal["federated"] = "federated"
    dataset: Name = Field(description="the local dataset each device's client trains on")
    to: list[Target] = Field(
        min_length=1, max_length=100, description="device ids, tag:key=value, or all"
    )
    model: Literal["mlp", "cnn1d"] = "mlp"
    rounds: int = Field(default=10, ge=1, le=1000)
    strategy: Literal["fedavg", "fedprox"] = "fedavg"
    min_clients: int = Field(default=2, ge=1, le=10_000)
    round_timeout: float = Field(
        default=60.0, gt=0, le=86_400, allow_inf_nan=False, description="seconds a round waits"
    )
    dp_clip: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="L2 norm updates are clipped to"
    )
    dp_noise: float = Field(
        default=0.0, ge=0, allow_inf_nan=False, description="noise multiplier, with dp_clip"
    )
    secagg: bool = Field(
        default=False,
        description="secure aggregation (Flower's SecAgg+): the aggregator sees only the sum "
        "of the updates, never one device's",
    )
    name: Name | None = Field(
        default=None, description="the registered model's name; fl-<dataset> when left out"
    )
    rollout: "RolloutPlan | None" = Field(
        default=None, description="how the aggregated model reaches devices; null: registered only"
    )

    @model_validator(mode="after")
    def _noise_needs_clipping(self) -> "FederatedRequest":
        if self.dp_noise > 0 and self.dp_clip is None:
            raise ValueError("dp_noise: noise is scaled by the clipping norm; set dp_clip too")
        return self

    @property
    def summary(self) -> str:
        """What the job does, in a few words."""
        return f"{self.strategy} {self.model} on {self.dataset}, {self.rounds} rounds"


class TradeoffRequest(_Command):
    """Measure version `version` of registered model `model` (the latest when left out) on
    device `device`'s profile against the server's model `cloud` (the one the device's
    offload policy names when left out) over a link of `bandwidth_kb_s` and `rtt_ms`: the
    device alone, joint inference at each of `fractions` by `gate`, the `split` net when
    given, and the server alone, on the held-out rows of the dataset `model` was trained on.
    What `edgestack tradeoff` does, and a tradeoff job; its result holds one row per policy in
    `choices`."""

    kind: Literal["tradeoff"] = "tradeoff"
    model: Name
    version: int | None = Field(
        default=None, ge=1, le=INT64_MAX, description="latest when left out"
    )
    device: DeviceId = Field(description="the device whose profile the model runs on")
    cloud: Name | None = Field(
        default=None, description="the server's model; the device's offload policy's if left out"
    )
    cloud_version: int | None = Field(
        default=None, ge=1, le=INT64_MAX, description="latest when left out"
    )
    bandwidth_kb_s: float = Field(
        default=250.0, ge=1, le=1e9, allow_inf_nan=False, description="the uplink, 1000 bytes/s"
    )
    rtt_ms: float = Field(
        default=30.0, ge=0, le=600_000, allow_inf_nan=False, description="the link's round trip"
    )
    fractions: list[Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]] = Field(
        default_factory=lambda: [0.05, 0.1, 0.2, 0.5],
        max_length=20,
        description="offload fractions of joint inference, each in (0, 1]",
    )
    gate: OffloadGate = "confidence"
    split: Name | None = Field(
        default=None, description="a split net's head, as edgestack split registered it"
    )
    split_version: int | None = Field(
        default=None, ge=1, le=INT64_MAX, description="latest when left out"
    )

    @property
    def summary(self) -> str:
        """What the job does, in a few words."""
        return f"{self.model} on {self.device} against {self.cloud or 'its offload model'}"


JobRequest = Annotated[
    TrainRequest | OptimiseRequest | EvaluateRequest | FederatedRequest | TradeoffRequest,
    Field(discriminator="kind"),
]
JobKind = Literal["train", "optimise", "evaluate", "federated", "tradeoff"]
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
"""queued, then running once the hub's worker claims it, then one of the last three."""
JOB_ENDED: frozenset[JobState] = frozenset({"succeeded", "failed", "cancelled"})
"""The states a job never leaves."""


class JobSubmit(_Command):
    """Run `job` in the hub's worker process."""

    job: JobRequest


class JobView(Wire):
    """A hub job: what was asked, how far it is (`progress` 0..1, `step` the last thing it
    did), and how it ended: `result` when it succeeded, `error` when it failed."""

    id: int
    kind: JobKind
    state: JobState
    job: JobRequest
    progress: float
    step: str | None
    result: dict[str, Any] | None
    error: str | None
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    log_lines: int


class JobLog(Wire):
    """A job's log lines, oldest first."""

    lines: list[str]


class JobReport(_Command):
    """What the worker tells the hub of the job it runs: how far it is, new log lines, and
    finally its `outcome` with a `result` or an `error`. A job that is no longer running
    (cancelled) refuses it with 409, which tells the worker to stop it."""

    progress: float | None = Field(default=None, ge=0, le=1)
    step: str | None = Field(default=None, max_length=200)
    lines: list[Annotated[str, StringConstraints(max_length=2000)]] = Field(
        default_factory=list, max_length=100
    )
    outcome: Literal["succeeded", "failed"] | None = None
    result: dict[str, Any] | None = None
    error: str | None = Field(default=None, max_length=4000)
    milestone: str | None = Field(
        default=None,
        max_length=200,
        description="a step worth a hub event (job_progress), as a federated job's round",
    )


# -- alerts and accuracy -----------------------------------------------------

AlertSignal = Literal[
    "drift_psi",
    "p99_ms",
    "anomaly_max",
    "error_rate",
    "bad_input_rate",
    "estimated_accuracy",
    "accuracy",
]
"""What an alert watches, per device and telemetry batch: the largest input PSI, the model's
p99 latency, the sensor-stream anomaly score, the share of chunks that failed, the share of
raw sample values counted as bad input, the accuracy estimated from calibrated confidences,
and the accuracy on labelled feedback."""
LOW_SIGNALS: frozenset[str] = frozenset({"estimated_accuracy", "accuracy"})
"""Signals that are bad when low: their alerts raise below `raise_at`, the others above it."""


class AlertRule(_Command):
    """When a device's `signal` raises an alert: at or past `raise_at` in `for_batches`
    telemetry batches in a row; when the alert clears: at or past `clear_at`, on the safe side
    of `raise_at`, in `clear_batches` batches in a row. In between, an alert stays as it is."""

    signal: AlertSignal
    raise_at: float = Field(allow_inf_nan=False, ge=-1e12, le=1e12)
    clear_at: float = Field(allow_inf_nan=False, ge=-1e12, le=1e12)
    for_batches: int = Field(default=2, ge=1, le=1000)
    clear_batches: int = Field(default=2, ge=1, le=1000)

    @field_validator("clear_at")
    @classmethod
    def _safe_side(cls, clear_at: float, info: ValidationInfo) -> float:
        signal, raise_at = info.data.get("signal"), info.data.get("raise_at")
        if signal is None or raise_at is None:
            return clear_at  # already refused for those fields
        if signal in LOW_SIGNALS and clear_at <= raise_at:
            raise ValueError(
                f"{signal} is bad when low, so clear_at must lie above raise_at ({raise_at}); "
                f"{clear_at} does not"
            )
        if signal not in LOW_SIGNALS and clear_at >= raise_at:
            raise ValueError(
                f"{signal} is bad when high, so clear_at must lie below raise_at ({raise_at}); "
                f"{clear_at} does not"
            )
        return clear_at


class AlertRules(_Command):
    """Rules to set, one per signal named; the other signals keep theirs."""

    rules: list[AlertRule] = Field(min_length=1, max_length=len(get_args(AlertSignal)))

    @field_validator("rules")
    @classmethod
    def _one_per_signal(cls, rules: list[AlertRule]) -> list[AlertRule]:
        signals = [rule.signal for rule in rules]
        twice = sorted({s for s in signals if signals.count(s) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} given twice; give one rule per signal")
        return rules


class AlertView(Wire):
    """An alert on one device's signal: `open` from when its rule raised it, `cleared` once
    its rule cleared it. `worst_value` is the furthest past `raise_at` it went while open."""

    id: int
    device_id: DeviceId
    signal: AlertSignal
    state: Literal["open", "cleared"]
    bundle_digest: Digest | None = Field(description="the model the device ran when raised")
    model: Name | None = Field(description="that model's name, when registered")
    version: int | None = Field(description="that model's version, when registered")
    first_value: float
    worst_value: float
    last_value: float
    raised_at: datetime
    cleared_at: datetime | None


class FeedbackSpan(_Command):
    """Ground truth: `device_id`'s machine was in state `label` from `start` to `end`, as a
    maintenance log or an operator knows it."""

    device_id: DeviceId
    start: Timestamp
    end: Timestamp
    label: Label

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise ValueError(f"must come after start ({start.isoformat()}); swap them?")
        return end


MAX_FEEDBACK_SPANS = 10_000
"""The most spans one `FeedbackBatch` holds."""


class FeedbackBatch(_Command):
    """Labelled spans posted back; sent again with the same `batch_id`, stored once."""

    batch_id: UUID
    spans: list[FeedbackSpan] = Field(min_length=1, max_length=MAX_FEEDBACK_SPANS)


class FeedbackAck(IngestAck):
    """`notes` say what was accepted but looks wrong: a label the model a device runs does
    not know, whose windows then all count as wrong."""

    notes: list[str] = Field(default_factory=list)


class AccuracyView(Wire):
    """How one model did on one device: `accuracy` over the `labelled_windows` of telemetry
    batches lying wholly inside a feedback span, and `estimated_accuracy` from its calibrated
    confidences over `estimated_windows`; null where none were counted."""

    device_id: DeviceId
    bundle_digest: Digest
    model: Name | None = Field(description="its name, when registered")
    version: int | None = Field(description="its version, when registered")
    accuracy: float | None
    labelled_windows: int
    estimated_accuracy: float | None
    estimated_windows: int


# -- rollouts ----------------------------------------------------------------

_Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
_GATE_TERMS = {
    "accuracy": ">=",
    "agreement": ">=",
    "p99_ms": "<=",
    "error_rate": "<=",
    "drift_psi": "<=",
}
_GATE_TERM = re.compile(r"\s*([a-z0-9_]+)\s*(>=|<=|=|<|>)\s*(\S*)\s*")


class Gate(_Command):
    """What a wave's shadow readings must show before its devices run the candidate: each
    term left out is not checked. On the command line, `Gate.parse` reads
    `agreement>=0.95,p99_ms<=20,error_rate<=0.01,drift_psi<=0.2` (and `accuracy>=0.9`, where
    feedback labels the windows)."""

    accuracy: _Share | None = Field(
        default=None,
        description="the candidate's accuracy on windows inside feedback spans, at least",
    )
    agreement: _Share | None = Field(
        default=None, description="at least this share of windows where both models agreed"
    )
    p99_ms: _LatencyMs | None = Field(default=None, description="the candidate's p99, at most")
    error_rate: _Share | None = Field(
        default=None, description="chunks on which the candidate raised, over all, at most"
    )
    drift_psi: _Score | None = Field(
        default=None, description="the largest PSI of a feature against its reference, at most"
    )

    @classmethod
    def parse(cls, text: str) -> "Gate":
        """The gate `text` writes as comma-separated terms; `ValueError` naming the term
        that is wrong and how to write it."""
        terms: dict[str, float] = {}
        for term in filter(str.strip, text.split(",")):
            match = _GATE_TERM.fullmatch(term)
            name, op, value = match.groups() if match else (term.strip(), "", "")
            if name not in _GATE_TERMS:
                raise ValueError(
                    f"gate: '{term.strip()[:80]}' is no term; write name>=value or "
                    f"name<=value, with {', '.join(n + o for n, o in _GATE_TERMS.items())}"
                )
            if op != _GATE_TERMS[name]:
                raise ValueError(
                    f"gate: '{term.strip()[:80]}': {name} is a "
                    f"{'floor' if _GATE_TERMS[name] == '>=' else 'ceiling'}; write "
                    f"{name}{_GATE_TERMS[name]}VALUE"
                )
            if name in terms:
                raise ValueError(f"gate: {name} is given twice; give each term once")
            try:
                terms[name] = float(value)
            except ValueError:
                raise ValueError(
                    f"gate: '{term.strip()[:80]}': '{value[:40]}' is no number; write "
                    f"{name}{op}0.95 or the like"
                ) from None
        try:
            return cls.model_validate(terms)
        except ValidationError as exc:
            where = ", ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"gate: {where}") from None

    def __str__(self) -> str:
        return ",".join(
            f"{name}{op}{value:g}"
            for name, op in _GATE_TERMS.items()
            if (value := getattr(self, name)) is not None
        )


def _waves(shares: list[float]) -> list[float]:
    if any(b <= a for a, b in itertools.pairwise(shares)) or shares[-1] != 1:
        raise ValueError(
            f"{', '.join(f'{s:g}' for s in shares)}: give each wave's cumulative share of the "
            "targets, rising, the last 1 (all of them), as in [0.1, 0.5, 1]"
        )
    return shares


class RolloutPlan(_Command):
    """How to move the devices of `to` onto a model version wave by wave: each wave's
    devices run it in shadow for `shadow_s`, then its gate is read from their reports; it
    holds: they run it and the next wave starts; it fails: the wave goes back, no further
    wave starts; too little data (a device under `min_windows`): the wave waits, never
    promoted."""

    to: list[Target] = Field(
        min_length=1, max_length=100, description="device ids, tag:key=value, or all"
    )
    waves: Annotated[
        list[Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]],
        Field(min_length=1, max_length=20),
        AfterValidator(_waves),
    ] = Field(
        default_factory=lambda: [0.1, 0.5, 1.0],
        description="each wave's cumulative share of the targets, sorted by device id",
    )
    shadow_s: float = Field(
        default=60.0, ge=0, le=7 * 86_400, description="how long each wave runs in shadow"
    )
    gate: Gate = Field(default_factory=Gate)
    min_windows: int = Field(
        default=100, ge=1, le=INT64_MAX, description="windows each wave device must report"
    )
    abort_failures: _Share = Field(
        default=0.1,
        description="roll the wave back at once when more than this share of its devices "
        "report the candidate failed (refused, would not load, gave up at run time)",
    )


# Its rollout plan is defined here, after the jobs.
FederatedRequest.model_rebuild()


class RolloutRequest(RolloutPlan):
    """Move the devices of `to` onto version `version` of `model` as the plan says."""

    model: Name
    version: int | None = Field(
        default=None, ge=1, le=INT64_MAX, description="latest when left out"
    )
    force: bool = Field(default=False, description="skip the checks that devices can run it")


RolloutState = Literal["shadowing", "held", "paused", "completed", "rolled_back", "aborted"]
"""shadowing: the current wave runs the candidate in shadow; held: its gate lacks data;
paused by an operator; then completed (committed), rolled_back or aborted."""
WaveState = Literal["waiting", "shadowing", "held", "promoted", "rolled_back"]


class GateReadings(Wire):
    """What a wave's devices reported of the candidate since the wave started."""

    windows: int = Field(description="windows both models classified, summed")
    accuracy: float | None = None
    labelled: int = Field(default=0, description="of those, windows inside feedback spans")
    agreement: float | None = None
    p99_ms: float | None = None
    error_rate: float | None = None
    drift_psi: float | None = None
    mean_confidence: float | None = None
    short: list[DeviceId] = Field(
        default_factory=list, description="devices under min_windows: the gate waits for them"
    )
    failed: list[DeviceId] = Field(
        default_factory=list, description="devices that reported the candidate failed"
    )


class WaveView(Wire):
    devices: list[DeviceId]
    state: WaveState
    started_at: datetime | None = None
    readings: GateReadings | None = None
    verdict: str | None = Field(default=None, description="why it was promoted or rolled back")


class RolloutView(Wire):
    """A rollout: its candidate, what was asked, where it is (`wave`, counted from 0), each
    wave's devices, state and gate readings, and each device's bundle before it began."""

    id: int
    candidate: BundleRef
    state: RolloutState
    request: RolloutRequest
    wave: int
    waves: list[WaveView]
    previous: dict[DeviceId, BundleRef | None]
    created_at: datetime
    finished_at: datetime | None


PolicyName = Literal["retrain-on-drift"]
PolicyState = Literal["labelling", "training", "optimising", "rolling_out", "succeeded", "failed"]
POLICY_ENDED: frozenset[PolicyState] = frozenset({"succeeded", "failed"})
"""The states a policy run never leaves."""


class RetrainPolicy(_Command):
    """What `retrain-on-drift` does when devices' input drifts: ask each of them for its
    `windows` least confident recent windows, wait until `min_labelled` of them are labelled
    into `dataset` (by feedback, or by an operator with `edgestack windows label`), then train
    `model` on what the dataset holds, optimise it for `profile` and roll it out as `rollout`
    plans. Each step is a hub job, a rollout or an event."""

    dataset: Name
    model: str = Field(
        default="auto", min_length=1, max_length=64, description="a trainer, or auto"
    )
    name: Name | None = Field(
        default=None, description="register as this model; the dataset's name when left out"
    )
    profile: str | None = Field(
        default=None,
        max_length=64,
        description="optimise the trained model for this device profile; left out, not optimised",
    )
    windows: int = Field(
        default=100, ge=1, le=MAX_REVIEW_WINDOWS, description="asked of each drifting device"
    )
    min_labelled: int = Field(
        default=30, ge=1, le=INT64_MAX, description="labelled windows before it trains"
    )
    budget_s: float = Field(default=120.0, ge=0, le=86_400, description="auto's time")
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    rollout: RolloutPlan | None = Field(
        default=None,
        description="how to roll the model out; left out, the run ends with it registered",
    )


class PolicyView(Wire):
    name: PolicyName
    policy: RetrainPolicy
    enabled: bool
    updated_at: datetime


class PolicyTrigger(_Command):
    """Start a run of a policy for these devices now, as a drift alert on them would."""

    devices: list[DeviceId] = Field(min_length=1, max_length=10_000)
    reason: str = Field(default="started by an operator", max_length=200)


class PolicyRunView(Wire):
    id: int
    policy: PolicyName
    state: PolicyState
    reason: str
    devices: list[DeviceId]
    requests: dict[str, int] = Field(description="per device, the window request it was sent")
    labelled: int = Field(description="its windows labelled into the policy's dataset so far")
    job_id: int | None = Field(description="the job it waits for, while training or optimising")
    rollout_id: int | None = Field(description="its rollout, once rolling out")
    model: BundleRef | None = Field(description="what it trained, then what it optimised")
    error: str | None
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
