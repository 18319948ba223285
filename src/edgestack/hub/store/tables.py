"""The hub's tables. Wire schemas live in `edgestack.protocol`; JSON columns hold their dumps."""

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from edgestack.hub.store.db import Base, UTCDateTime

__all__ = [
    "AlertRow",
    "AlertRuleRow",
    "AlertStreakRow",
    "ApiTokenRow",
    "AuditRow",
    "DatasetVersionRow",
    "DeviceRow",
    "EventRow",
    "FeedbackRow",
    "JobRow",
    "LeaseRow",
    "LoginSessionRow",
    "ModelRow",
    "PolicyRow",
    "PolicyRunRow",
    "ReceivedBatchRow",
    "RetentionTotalRow",
    "ReviewWindowRow",
    "RolloutRow",
    "SampleRow",
    "SpecRow",
    "TelemetryRollupRow",
    "TelemetryRow",
    "WebhookDeliveryRow",
    "WebhookRow",
]

Json = dict[str, Any]


class DeviceRow(Base):
    """A device's twin. `desired` holds `DesiredState` without its version, which is
    `desired_version`; `telemetry` holds `TelemetryTotals`. `reenrolment` is null, or
    `waiting` once an enrolment of this id without its token was refused, or `approved` by
    an operator for the next one. `previous_collect` is the `Collection` the desired state
    asked for before its current one, if any. `tags` maps a tag's key to its value.
    `broker_hash` is null for a device enrolled before the hub had a broker account for it."""

    __tablename__ = "devices"

    device_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), index=True)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hardware: Mapped[Json] = mapped_column(JSON)
    desired: Mapped[Json] = mapped_column(JSON)
    desired_version: Mapped[int]
    reported: Mapped[Json | None] = mapped_column(JSON)
    telemetry: Mapped[Json] = mapped_column(JSON)
    reenrolment: Mapped[Literal["waiting", "approved"] | None] = mapped_column(
        String(8), default=None
    )
    previous_collect: Mapped[Json | None] = mapped_column(JSON, default=None)
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # The broker's salted hash of the device token, its MQTT password: the hub sees the
    # token only as it issues it, and the broker's account files are rebuilt from these.
    broker_hash: Mapped[str | None] = mapped_column(String(255), default=None)


class TelemetryRow(Base):
    """One telemetry batch as a device sent it. Indexed by device and `seq`, so the rolling
    drift reads a device's latest batches without sorting all it ever sent."""

    __tablename__ = "telemetry_batches"
    __table_args__ = (
        UniqueConstraint("device_id", "batch_id"),
        Index("ix_telemetry_batches_device_seq", "device_id", "seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.device_id"))
    batch_id: Mapped[str] = mapped_column(String(36))
    seq: Mapped[int]
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    batch: Mapped[Json] = mapped_column(JSON)


class TelemetryRollupRow(Base):
    """What retention kept of a device's telemetry batches received in `hour` that ran bundle
    `bundle_digest` ("" for none) once it removed them: counts and sums, the confidence
    histogram summed, and the windows feedback had labelled (`labelled`) and the model got
    right (`right`) when they were rolled up. Sums stop at the largest 64-bit integer."""

    __tablename__ = "telemetry_rollups"
    __table_args__ = (UniqueConstraint("device_id", "hour", "bundle_digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.device_id"))
    hour: Mapped[datetime] = mapped_column(UTCDateTime)
    bundle_digest: Mapped[str] = mapped_column(String(64))
    batches: Mapped[int] = mapped_column(BigInteger)
    windows: Mapped[int] = mapped_column(BigInteger)
    predictions: Mapped[dict[str, int]] = mapped_column(JSON)
    confidence: Mapped[list[int]] = mapped_column(JSON)
    labelled: Mapped[int] = mapped_column(BigInteger)
    right: Mapped[int] = mapped_column(BigInteger)
    raw_bytes: Mapped[int] = mapped_column(BigInteger)
    uplink_bytes: Mapped[int] = mapped_column(BigInteger)
    failed_chunks: Mapped[int] = mapped_column(BigInteger)
    latency_ms_p95_max: Mapped[float | None] = mapped_column(Float)


class RetentionTotalRow(Base):
    """Rows retention removed from table `name` since the database was made (`removed`) and
    in the run under way (`pending`), and when it last finished a run."""

    __tablename__ = "retention_totals"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    removed: Mapped[int] = mapped_column(BigInteger)
    pending: Mapped[int] = mapped_column(BigInteger)
    last_run_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReceivedBatchRow(Base):
    """Which event and sample batches arrived, so a batch sent again is stored once.
    `device_id` is the sender: an enrolled device, or the source named by a sample import."""

    __tablename__ = "received_batches"
    __table_args__ = (UniqueConstraint("device_id", "kind", "batch_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(16))
    batch_id: Mapped[str] = mapped_column(String(36))
    accepted: Mapped[int]
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EventRow(Base):
    """An event a device sent, or one the hub raised itself (`batch_id` empty); `device_id` is
    the device it concerns, null when none."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.device_id"), index=True)
    batch_id: Mapped[str] = mapped_column(String(36))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    event: Mapped[Json] = mapped_column(JSON)


class SpecRow(Base):
    __tablename__ = "specs"

    fingerprint: Mapped[str] = mapped_column(String(16), primary_key=True)
    spec: Mapped[Json] = mapped_column(JSON)


class SampleRow(Base):
    """One labelled feature window. `device_id` is where it came from: an enrolled device,
    or the source an admin named when importing it. `split` is fixed when it arrives."""

    __tablename__ = "samples"
    # Removed samples' ids are never given again (SQLite would reuse the newest one's).
    __table_args__ = (
        Index("ix_samples_label_device", "label", "device_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(63), index=True)
    batch_id: Mapped[str] = mapped_column(String(36))
    dataset: Mapped[str] = mapped_column(String(63), index=True)
    spec: Mapped[str] = mapped_column(ForeignKey("specs.fingerprint"))
    label: Mapped[str] = mapped_column(String(64))
    split: Mapped[str] = mapped_column(String(5))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    features: Mapped[list[float]] = mapped_column(JSON)


class DatasetVersionRow(Base):
    """A frozen version: the samples of `dataset` and `spec` with ids up to `last_sample_id`,
    written once to `file` under the hub's data directory; `counts` holds `SampleCounts`."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset: Mapped[str] = mapped_column(String(63))
    version: Mapped[int]
    spec: Mapped[str] = mapped_column(ForeignKey("specs.fingerprint"))
    last_sample_id: Mapped[int]
    frozen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    counts: Mapped[Json] = mapped_column(JSON)
    file: Mapped[str] = mapped_column(String(255))


class ModelRow(Base):
    """A registered model version: `digest` names the signed bundle the hub made and
    serves, `submitted_digest` the bytes it was registered with."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63))
    version: Mapped[int]
    digest: Mapped[str] = mapped_column(String(64), index=True)
    submitted_digest: Mapped[str | None] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int]
    manifest: Mapped[Json] = mapped_column(JSON)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JobRow(Base):
    """A job the hub's worker runs: `request` holds its `TrainRequest` or `OptimiseRequest`,
    `log` its lines, `result` what it made once `state` is `succeeded`; `claimed_by` the
    lease holder id of the hub process whose worker claimed it."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    request: Mapped[Json] = mapped_column(JSON)
    progress: Mapped[float] = mapped_column(Float)
    step: Mapped[str | None] = mapped_column(String(200))
    log: Mapped[list[str]] = mapped_column(JSON)
    result: Mapped[Json | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(String(4000))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(200), default=None)


class ReviewWindowRow(Base):
    """A window a device sent when asked (`DesiredState.send_windows`): what its model,
    `bundle_digest`, predicted and how sure it was. `label` is null until someone labels it;
    then the window is also a sample in `dataset`."""

    __tablename__ = "review_windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.device_id"), index=True)
    request_id: Mapped[int]
    spec: Mapped[str] = mapped_column(ForeignKey("specs.fingerprint"))
    bundle_digest: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    features: Mapped[list[float]] = mapped_column(JSON)
    predicted: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[float] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    label: Mapped[str | None] = mapped_column(String(64), index=True)
    dataset: Mapped[str | None] = mapped_column(String(63))


class PolicyRow(Base):
    """A policy the hub follows: `spec` holds its `RetrainPolicy`."""

    __tablename__ = "policies"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    spec: Mapped[Json] = mapped_column(JSON)
    enabled: Mapped[bool]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PolicyRunRow(Base):
    """One run of a policy, from the devices it was started for to the model it rolled out:
    `requests` maps each device to the window request it was sent, `model` holds the
    `BundleRef` made so far, `job_id` the job it waits for, `rollout_id` its rollout."""

    __tablename__ = "policy_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    policy: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    requests: Mapped[dict[str, int]] = mapped_column(JSON)
    job_id: Mapped[int | None]
    rollout_id: Mapped[int | None]
    model: Mapped[Json | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(String(4000))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AlertRuleRow(Base):
    """An `AlertRule` an operator set; a signal without a row follows the built-in default."""

    __tablename__ = "alert_rules"

    signal: Mapped[str] = mapped_column(String(32), primary_key=True)
    raise_at: Mapped[float] = mapped_column(Float)
    clear_at: Mapped[float] = mapped_column(Float)
    for_batches: Mapped[int]
    clear_batches: Mapped[int]


class AlertStreakRow(Base):
    """How many of a device's latest telemetry batches in a row were past the rule of
    `signal`: past `raise_at` while no alert is open, past `clear_at` while one is."""

    __tablename__ = "alert_streaks"

    device_id: Mapped[str] = mapped_column(ForeignKey("devices.device_id"), primary_key=True)
    signal: Mapped[str] = mapped_column(String(32), primary_key=True)
    batches: Mapped[int]


class AlertRow(Base):
    """An alert on a device's signal: open while `cleared_at` is null. `bundle_digest` is the
    model the device ran when it was raised."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_device_signal", "device_id", "signal"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.device_id"))
    signal: Mapped[str] = mapped_column(String(32))
    bundle_digest: Mapped[str | None] = mapped_column(String(64))
    first_value: Mapped[float] = mapped_column(Float)
    worst_value: Mapped[float] = mapped_column(Float)
    last_value: Mapped[float] = mapped_column(Float)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class FeedbackRow(Base):
    """A labelled span posted back: the device's machine was in state `label` from `start`
    to `end`. `batch_id` is the feedback batch it came in."""

    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_device_start", "device_id", "start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.device_id"))
    batch_id: Mapped[str] = mapped_column(String(36))
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    label: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RolloutRow(Base):
    """A rollout of model `name` version `version` (bundle `digest`): `request` holds its
    `RolloutRequest`, `waves` its `WaveView`s, `previous` each device's bundle before it
    began (a `BundleRef` dump or null), `wave` the index of the current wave."""

    __tablename__ = "rollouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63))
    version: Mapped[int]
    digest: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), index=True)
    request: Mapped[Json] = mapped_column(JSON)
    wave: Mapped[int]
    waves: Mapped[list[Json]] = mapped_column(JSON)
    previous: Mapped[dict[str, Json | None]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiTokenRow(Base):
    """A named API token for a person or an outside application: only its sha256 is kept.
    It works until `expires_at` (never when null) unless `revoked_at` is set."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    role: Mapped[str] = mapped_column(String(8))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(63))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditRow(Base):
    """A control action: `actor` (a token's name) with `role` did `action` (an operation id)
    on `target` at `at`; `before` and `after` hold the state it changed, as JSON."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(63), index=True)
    role: Mapped[str] = mapped_column(String(8))
    action: Mapped[str] = mapped_column(String(63), index=True)
    target: Mapped[str | None] = mapped_column(String(255), index=True)
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)


class WebhookRow(Base):
    """A subscription: the events `filters` (an `EventFilter` dump) takes are POSTed to `url`,
    signed with `secret`, in order after `delivered_id`, the last event id handled."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(200))
    filters: Mapped[Json] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_id: Mapped[int]


class WebhookDeliveryRow(Base):
    """One attempt to deliver event `event_id` to webhook `webhook_id`: the receiver's status,
    or the error when none came; `outcome` delivered, retrying or failed."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_webhook_event", "webhook_id", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id"))
    event_id: Mapped[int]
    attempt: Mapped[int]
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[float] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(16))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginSessionRow(Base):
    """A dashboard login: only the sha256 of its id (the cookie) is kept. It speaks for the
    named token `token_id`, or, when that is null, for the hub's admin token whose sha256 was
    `admin_sha256` at login; it ends at `expires_at` or when logged out."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    id_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id"))
    admin_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LeaseRow(Base):
    """Lease `name`: hub process `holder` alone runs what it names (the controller, webhook
    delivery) until `expires_at`, unless it renews it before then; `replica:<holder>`, that
    the process runs."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
