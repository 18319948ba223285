"""Alerts on the devices' signals, with hysteresis.

Each telemetry batch gives a device's signals a value (`signals`); a rule per signal raises an
alert when `for_batches` batches in a row are at or past its `raise_at`, and clears it when
`clear_batches` in a row are at or past `clear_at`, on the safe side: a value flapping around
`raise_at` raises one alert, and between the two thresholds an alert stays as it is. Each
raise and clear is one hub event. Evaluated in the transaction that stores the batch.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import get_args

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from edgestack.hub.store import events, feedback
from edgestack.hub.store.db import Window, utcnow
from edgestack.hub.store.tables import AlertRow, AlertRuleRow, AlertStreakRow, FeedbackRow
from edgestack.protocol import (
    LOW_SIGNALS,
    AlertRule,
    AlertRules,
    AlertSignal,
    AlertView,
    TelemetryBatch,
    TelemetryTotals,
)

__all__ = [
    "DEFAULT_RULES",
    "SIGNALS",
    "Lookups",
    "evaluate",
    "listing",
    "open_counts",
    "rules",
    "set_rules",
    "signals",
]

SIGNALS: tuple[AlertSignal, ...] = get_args(AlertSignal)
_RAW_VALUE_BYTES = 4  # a chunk's samples are float32
DEFAULT_RULES: dict[str, AlertRule] = {
    rule.signal: rule
    for rule in (
        AlertRule(signal="drift_psi", raise_at=0.2, clear_at=0.1),
        AlertRule(signal="p99_ms", raise_at=100.0, clear_at=50.0),
        AlertRule(signal="anomaly_max", raise_at=6.0, clear_at=4.0),
        AlertRule(signal="error_rate", raise_at=0.05, clear_at=0.01),
        AlertRule(signal="bad_input_rate", raise_at=0.1, clear_at=0.02),
        AlertRule(signal="estimated_accuracy", raise_at=0.8, clear_at=0.85),
        AlertRule(signal="accuracy", raise_at=0.8, clear_at=0.85),
    )
}
"""The rule of each signal no operator has set: PSI 0.2 is the usual mark of a shift that
matters, 0.1 of none; anomaly scores are |z| of a window's energy; a simulated sensor drops
about one value in a thousand, far below 10 % bad input."""


def rules(session: Session) -> list[AlertRule]:
    """Every signal's rule, as set or by default, in the order of `SIGNALS`."""
    stored = {row.signal: row for row in session.scalars(select(AlertRuleRow))}
    return [
        _rule(stored[signal]) if signal in stored else DEFAULT_RULES[signal] for signal in SIGNALS
    ]


def set_rules(session: Session, given: AlertRules) -> list[AlertRule]:
    """Set the rules of the signals `given` names; return every signal's rule. An open alert
    is cleared by its new rule's `clear_at` from the next batch on."""
    for rule in given.rules:
        session.merge(AlertRuleRow(**rule.model_dump()))
    session.flush()
    return rules(session)


def _rule(row: AlertRuleRow) -> AlertRule:
    return AlertRule(
        signal=row.signal,  # type: ignore[arg-type]  # written from an AlertRule
        raise_at=row.raise_at,
        clear_at=row.clear_at,
        for_batches=row.for_batches,
        clear_batches=row.clear_batches,
    )


class Lookups:
    """What the alerts of the batches of `device_ids` stored in one transaction read, read
    once for them all: the rules, the registered models, each device's streaks and open
    alerts, and which devices have a labelled span. Rows added through it stay in it, so a
    device's second batch of the transaction sees what its first one changed. Ask it only of
    the devices it was made for."""

    def __init__(self, session: Session, device_ids: Iterable[str]) -> None:
        self.models = feedback.Models(session)
        self._session = session
        self._devices = set(device_ids)
        self._rules: dict[str, AlertRule] | None = None
        self._labelled: set[str] | None = None
        self._streaks: dict[tuple[str, str], AlertStreakRow] | None = None
        self._open: dict[tuple[str, str], AlertRow] | None = None

    def rules(self) -> dict[str, AlertRule]:
        """Every signal's rule by signal."""
        if self._rules is None:
            self._rules = {rule.signal: rule for rule in rules(self._session)}
        return self._rules

    def labelled(self, device_id: str) -> bool:
        """Whether `device_id` may have a span labelling its batches: a device with none
        needs no look-up of a label per batch."""
        if self._labelled is None:
            self._labelled = set(
                self._session.scalars(
                    select(FeedbackRow.device_id)
                    .where(FeedbackRow.device_id.in_(self._devices))
                    .distinct()
                )
            )
        return device_id in self._labelled

    def streak(self, device_id: str, signal: str) -> AlertStreakRow:
        """The streak of `device_id`'s `signal`, a new one at 0 batches if it had none."""
        if self._streaks is None:
            self._streaks = {
                (row.device_id, row.signal): row
                for row in self._session.scalars(
                    select(AlertStreakRow).where(AlertStreakRow.device_id.in_(self._devices))
                )
            }
        key = (device_id, signal)
        if key not in self._streaks:
            streak = AlertStreakRow(device_id=device_id, signal=signal, batches=0)
            self._session.add(streak)
            self._streaks[key] = streak
        return self._streaks[key]

    def open_alerts(self) -> dict[tuple[str, str], AlertRow]:
        """The open alerts of the devices by device and signal; raise and clear keep it true."""
        if self._open is None:
            self._open = {
                (row.device_id, row.signal): row
                for row in self._session.scalars(
                    select(AlertRow).where(
                        AlertRow.device_id.in_(self._devices), AlertRow.cleared_at.is_(None)
                    )
                )
            }
        return self._open


def signals(
    session: Session,
    device_id: str,
    batch: TelemetryBatch,
    totals: TelemetryTotals,
    lookups: Lookups,
) -> dict[AlertSignal, float]:
    """The value of each signal a batch of `device_id` gives, with the device's `totals` after
    it; a signal it says nothing of (no monitoring, no chunks counted, no label, no
    calibration) is left out. Drift is the totals' rolling one: one batch holds too few
    windows for a PSI that is not mostly noise."""
    monitoring = batch.monitoring
    bad = sum(batch.bad_input.values())
    values: dict[AlertSignal, float | None] = {
        "drift_psi": totals.drift_psi,
        "p99_ms": monitoring.p99_ms if monitoring else None,
        "anomaly_max": monitoring.anomaly_max if monitoring else None,
        "error_rate": batch.failed_chunks / batch.chunks if batch.chunks else None,
        "bad_input_rate": _bad_share(bad, batch.raw_bytes),
        "estimated_accuracy": feedback.estimated_accuracy(lookups.models, batch),
        "accuracy": (
            feedback.batch_accuracy(session, device_id, batch)
            if lookups.labelled(device_id)
            else None
        ),
    }
    return {signal: value for signal, value in values.items() if value is not None}


def _bad_share(bad: int, raw_bytes: int) -> float | None:
    """Bad input over the raw sample values read; 1 when the source gave nothing but failures."""
    values = raw_bytes // _RAW_VALUE_BYTES
    if not values:
        return 1.0 if bad else None
    return min(1.0, bad / values)


def _bad(signal: str, value: float, raise_at: float) -> bool:
    """Whether `value` is at or past `raise_at`, on the bad side of `signal`."""
    return value <= raise_at if signal in LOW_SIGNALS else value >= raise_at


def _good(signal: str, value: float, clear_at: float) -> bool:
    """Whether `value` is at or past `clear_at`, on the good side of `signal`."""
    return value >= clear_at if signal in LOW_SIGNALS else value <= clear_at


def evaluate(
    session: Session,
    device_id: str,
    batch: TelemetryBatch,
    totals: TelemetryTotals,
    lookups: Lookups,
) -> None:
    """Move the device's alerts on by one batch, its newest, with the device's `totals` after
    it: raise and clear them by their rules, each change an event."""
    values = signals(session, device_id, batch, totals, lookups)
    if not values:
        return
    by_signal = lookups.rules()
    open_alerts = lookups.open_alerts()
    now = utcnow()
    for signal, value in values.items():
        rule = by_signal[signal]
        streak = lookups.streak(device_id, signal)
        alert = open_alerts.get((device_id, signal))
        if alert is None:
            streak.batches = streak.batches + 1 if _bad(signal, value, rule.raise_at) else 0
            if streak.batches >= rule.for_batches:
                streak.batches = 0
                open_alerts[device_id, signal] = _raise(
                    session, device_id, rule, value, batch.bundle_digest, lookups.models, now
                )
        else:
            alert.last_value = value
            alert.worst_value = _worse(signal, alert.worst_value, value)
            streak.batches = streak.batches + 1 if _good(signal, value, rule.clear_at) else 0
            if streak.batches >= rule.clear_batches:
                streak.batches = 0
                alert.cleared_at = now
                del open_alerts[device_id, signal]
                events.record(
                    session,
                    "alert_cleared",
                    f"{signal} {value:.4g} at or past {rule.clear_at:g} in {rule.clear_batches} "
                    f"batches in a row: cleared; worst {alert.worst_value:.4g}",
                    device_id=device_id,
                    severity="info",
                    bundle_digest=alert.bundle_digest,
                )


def _raise(
    session: Session,
    device_id: str,
    rule: AlertRule,
    value: float,
    digest: str | None,
    models: feedback.Models,
    now: datetime,
) -> AlertRow:
    alert = AlertRow(
        device_id=device_id,
        signal=rule.signal,
        bundle_digest=digest,
        first_value=value,
        worst_value=value,
        last_value=value,
        raised_at=now,
    )
    session.add(alert)
    manifest = None if digest is None else models.manifest(digest)
    model = (
        f"{manifest.name} v{manifest.version}" if manifest else digest[:12] if digest else "none"
    )
    events.record(
        session,
        "alert_raised",
        f"{rule.signal} {value:.4g} at or past {rule.raise_at:g} in {rule.for_batches} "
        f"batches in a row; model {model}",
        device_id=device_id,
        severity="warning",
        bundle_digest=digest,
    )
    return alert


def _worse(signal: str, a: float, b: float) -> float:
    return min(a, b) if signal in LOW_SIGNALS else max(a, b)


def listing(
    session: Session,
    window: Window | None = None,
    *,
    device_id: str | None = None,
    open_only: bool = False,
) -> list[AlertView]:
    """The alerts in `window`, of `device_id` only and the open ones only when asked."""
    query = (window or Window()).apply(select(AlertRow), AlertRow.id)
    if device_id is not None:
        query = query.where(AlertRow.device_id == device_id)
    if open_only:
        query = query.where(AlertRow.cleared_at.is_(None))
    models = feedback.Models(session)
    return [
        AlertView(
            id=row.id,
            device_id=row.device_id,
            signal=row.signal,  # type: ignore[arg-type]  # written from an AlertRule
            state="open" if row.cleared_at is None else "cleared",
            bundle_digest=row.bundle_digest,
            **models.named(row.bundle_digest),
            first_value=row.first_value,
            worst_value=row.worst_value,
            last_value=row.last_value,
            raised_at=row.raised_at,
            cleared_at=row.cleared_at,
        )
        for row in session.scalars(query)
    ]


def open_counts(session: Session) -> dict[tuple[str, str], int]:
    """Open alerts per device and signal."""
    rows = session.execute(
        select(AlertRow.device_id, AlertRow.signal, func.count())
        .where(AlertRow.cleared_at.is_(None))
        .group_by(AlertRow.device_id, AlertRow.signal)
    )
    return {(device, signal): n for device, signal, n in rows}
