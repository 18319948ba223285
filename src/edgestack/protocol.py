"""The contract between hub, agents and outside applications.

Every message on the wire is one of these models; neither side invents JSON.
`PROTOCOL` is the version an agent states when it enrols; a hub refuses versions
it does not speak, with a message saying which it does.
"""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from edgestack.bundle import Digest, InputSpec, Manifest, Name, PublicKey

__all__ = [
    "PROTOCOL",
    "BadExample",
    "BundleRef",
    "Collection",
    "DataSample",
    "DatasetDetail",
    "DatasetSummary",
    "DatasetVersion",
    "DatasetView",
    "DeployRequest",
    "DeployResponse",
    "DesiredPatch",
    "DesiredState",
    "DeviceId",
    "DeviceView",
    "EnrolRequest",
    "EnrolResponse",
    "Event",
    "EventBatch",
    "EventKind",
    "EventView",
    "FaultInjection",
    "Feeds",
    "Hardware",
    "IngestAck",
    "KeyView",
    "Label",
    "ModelView",
    "Problem",
    "ProfileView",
    "ReportedState",
    "RuleParams",
    "SampleBatch",
    "SampleCounts",
    "SampleImport",
    "SampleRecord",
    "Split",
    "TelemetryBatch",
    "TelemetryTotals",
    "problem_detail",
]

PROTOCOL = 1

DeviceId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Label = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_]{0,39}$")]
Split = Literal["train", "test"]


class Wire(BaseModel):
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
    cores: int = Field(ge=1)
    ram_mb: int = Field(ge=1)
    arch: str
    providers: list[str]


class EnrolRequest(Wire):
    protocol: int = PROTOCOL
    device_id: DeviceId
    enrol_token: str = Field(min_length=1)
    hardware: Hardware


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
    version: int = Field(ge=1)
    digest: Digest


class RuleParams(Wire):
    """When predictions become an alarm: `trigger_windows` confident fault windows in a row
    raise it, `clear_windows` normal windows in a row clear it."""

    normal_label: Label = "normal"
    min_confidence: float = Field(default=0.7, ge=0, le=1)
    trigger_windows: int = Field(default=4, ge=1, le=1000)
    clear_windows: int = Field(default=8, ge=1, le=1000)


class Collection(Wire):
    """Send every window's features to the hub, labelled, into the named dataset."""

    label: Label
    dataset: Name = "default"


class FaultInjection(Wire):
    """Asks a simulated source to develop a fault; real sources report it as unsupported."""

    kind: Label
    severity: float = Field(default=1.0, ge=0, le=10)


_PROFILE_OVERRIDE = (
    "the device profile deployments are checked against, one of GET /v1/profiles; "
    "null for the one the device's hardware puts it in. The agent ignores it"
)


_RULES_OVERRIDE = (
    "alarm rules overriding those of the app the device runs; null for the app's own. "
    "Devices are sent the state with its null fields left out: an agent of protocol 1 "
    "without this meaning reads a missing field as its default"
)


class DesiredState(Wire):
    version: int = Field(default=0, ge=0)
    bundle: BundleRef | None = None
    rules: RuleParams | None = Field(default=None, description=_RULES_OVERRIDE)
    collect: Collection | None = None
    fault: FaultInjection | None = None
    telemetry_interval_s: float = Field(default=5.0, ge=0.2, le=3600)
    profile: str | None = Field(default=None, description=_PROFILE_OVERRIDE)


class DesiredPatch(Wire):
    """A change to a device's desired state. Fields left out stay as they are;
    fields sent as null are cleared."""

    rules: RuleParams | None = Field(
        default=None, description="alarm rules overriding the app's; null for the app's own"
    )
    collect: Collection | None = None
    fault: FaultInjection | None = None
    telemetry_interval_s: float | None = Field(default=None, ge=0.2, le=3600)
    profile: str | None = Field(default=None, description=_PROFILE_OVERRIDE)


# Generous: a real source's channels are named after its topics or ports.
_Word = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class Feeds(Wire):
    """What a device can feed a model: its source's channels at its rate, and the feature
    extractors it has registered. Deployments are checked against it."""

    sensors: list[_Word] = Field(max_length=1024)
    rate_hz: float = Field(gt=0)
    extractors: list[_Word] = Field(max_length=1024)


class ReportedState(Wire):
    desired_version: int = Field(ge=0)
    bundle: BundleRef | None = None
    status: Literal["idle", "collecting", "running", "error", "failed"] = Field(
        description="failed: the desired bundle kept failing at run time and was given up"
    )
    error: str | None = None
    hardware: Hardware
    feeds: Feeds | None = Field(default=None, description="what the device can feed a model")
    rules: RuleParams | None = Field(
        default=None,
        description="the alarm rules the device applies: desired.rules, else its app's; "
        "null from agents that do not say",
    )


# -- data from the device ----------------------------------------------------


class BadExample(Wire):
    """One piece of bad input a device kept for inspection, cut to its first 200 characters."""

    reason: str = Field(max_length=64)
    example: str = Field(max_length=200)


class TelemetryBatch(Wire):
    """Aggregates over one interval. `seq` counts a device's batches from 1 without gaps,
    so the hub can tell a lost batch from one that never existed."""

    batch_id: UUID
    seq: int = Field(ge=1)
    start: datetime
    end: datetime
    windows: int = Field(ge=0)
    predictions: dict[str, int] = Field(default_factory=dict)
    mean_confidence: float | None = Field(default=None, ge=0, le=1)
    latency_ms_p50: float | None = Field(default=None, ge=0)
    latency_ms_p95: float | None = Field(default=None, ge=0)
    bad_input: dict[str, int] = Field(
        default_factory=dict, description="bad input counted per reason: nan, time_backwards, ..."
    )
    bad_examples: list[BadExample] = Field(default_factory=list, max_length=100)
    raw_bytes: int = Field(ge=0, description="what streaming the raw samples would have cost")
    uplink_bytes: int = Field(ge=0, description="bytes this device sent to the hub")
    bundle_digest: Digest | None = None
    failed_chunks: int = Field(
        default=0, ge=0, description="chunks whose steps, extractors or model raised; skipped"
    )
    outbox_dropped: int = Field(
        default=0, ge=0, description="messages the full outbox dropped, since the device began"
    )
    dead_lettered: int = Field(
        default=0, ge=0, description="messages the hub refused for good, since the device began"
    )


EventKind = Literal[
    # from a device
    "alarm_raised",
    "alarm_cleared",
    "model_loaded",
    "error",
    "bundle_refused",  # digest or signature check failed; the running model stays
    "load_failed",  # a verified bundle this device cannot run; not retried until desired changes
    "model_failed",  # repeated failures at run time; fell back to the previous bundle
    "outbox_dropped",  # the outbox was full and dropped telemetry, counted
    # from the hub itself
    "device_enrolled",
    "device_reenrolled",
    "reenrol_refused",
    "store_corrupt",
]


class Event(Wire):
    event_id: UUID
    at: datetime
    kind: EventKind
    severity: Literal["info", "warning", "critical"]
    label: str | None = None
    confidence: float | None = Field(default=None, ge=0, le=1)
    message: str = Field(max_length=2000)
    bundle_digest: Digest | None = None


class EventBatch(Wire):
    batch_id: UUID
    events: list[Event] = Field(min_length=1, max_length=1000)


class DataSample(Wire):
    at: datetime
    label: Label
    features: list[float] = Field(min_length=1, max_length=100_000)


class SampleBatch(Wire):
    batch_id: UUID
    spec: InputSpec
    samples: list[DataSample] = Field(min_length=1, max_length=10_000)
    dataset: Name = Field(default="default", description="Collection.dataset when collected")


class SampleImport(Wire):
    """Labelled feature rows recorded elsewhere, uploaded into a dataset by an admin.
    `device_id` names where they came from; it need not be an enrolled device."""

    batch_id: UUID
    device_id: DeviceId = "import"
    spec: InputSpec
    samples: list[DataSample] = Field(min_length=1, max_length=10_000)


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


class DeployRequest(Wire):
    """Which model version goes to which devices: name them in `devices`, or set `all`."""

    model: Name
    version: int | None = Field(default=None, ge=1, description="latest when left out")
    devices: list[DeviceId] | None = Field(
        default=None, description="the devices to deploy to; leave out with all"
    )
    all: bool = Field(default=False, description="deploy to every enrolled device")
    force: bool = Field(
        default=False,
        description="skip the checks that each device can feed the bundle and that its "
        "footprint fits the device's profile",
    )


class DeployResponse(Wire):
    bundle: BundleRef
    devices: list[DeviceId]


class EventView(Wire):
    id: int
    device_id: DeviceId | None = Field(description="the device it concerns; null for the hub's own")
    received_at: datetime
    event: Event


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


class DatasetSummary(Wire):
    name: Name
    counts: SampleCounts = Field(description="the samples it holds now, frozen or not")
    versions: int
    latest: int | None


class DatasetDetail(Wire):
    name: Name
    counts: SampleCounts = Field(description="the samples it holds now, frozen or not")
    specs: dict[str, InputSpec] = Field(description="by fingerprint: its samples' specs")
    versions: list[DatasetVersion]
