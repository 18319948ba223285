"""From per-window predictions to alarms, with hysteresis so one odd window raises nothing."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import numpy as np

from edgestack.protocol import Event, RuleParams

__all__ = ["AlarmRule"]


class AlarmRule:
    """Raises an alarm after `trigger_windows` confident windows of one fault label in a row,
    and clears it after `clear_windows` windows of the normal label in a row."""

    def __init__(self, params: RuleParams) -> None:
        self.params = params
        self.active: str | None = None
        self._candidate: str | None = None
        self._streak: list[float] = []
        self._normal_streak = 0

    def update(
        self, labels: Sequence[str], confidences: np.ndarray, at: datetime, digest: str | None
    ) -> list[Event]:
        p = self.params
        events: list[Event] = []
        for label, confidence in zip(labels, confidences.tolist(), strict=True):
            if label == p.normal_label:
                self._normal_streak += 1
                self._candidate, self._streak = None, []
            elif confidence >= p.min_confidence:
                self._normal_streak = 0
                if label != self._candidate:
                    self._candidate, self._streak = label, []
                self._streak.append(confidence)
            else:
                # An unsure fault window neither confirms a fault nor counts as normal.
                self._candidate, self._streak = None, []
            if (
                self._candidate not in (None, self.active)
                and len(self._streak) >= p.trigger_windows
            ):
                self.active = self._candidate
                mean = sum(self._streak) / len(self._streak)
                message = (
                    f"{self.active} in {len(self._streak)} windows in a row "
                    f"(mean confidence {mean:.2f})"
                )
                events.append(_alarm("alarm_raised", self.active, message, at, digest, mean))
            elif self.active is not None and self._normal_streak >= p.clear_windows:
                message = f"{self.active} cleared after {self._normal_streak} normal windows"
                events.append(_alarm("alarm_cleared", self.active, message, at, digest, None))
                self.active = None
        return events


def _alarm(
    kind: Literal["alarm_raised", "alarm_cleared"],
    label: str,
    message: str,
    at: datetime,
    digest: str | None,
    confidence: float | None,
) -> Event:
    return Event(
        event_id=uuid.uuid4(),
        at=at,
        kind=kind,
        severity="critical" if kind == "alarm_raised" else "info",
        label=label,
        confidence=confidence,
        message=message,
        bundle_digest=digest,
    )
