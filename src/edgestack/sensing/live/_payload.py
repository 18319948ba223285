"""Readings as devices send them (a JSON object or a CSV line), and the rows they become.

MQTT and serial sources share both halves: a `Parser` turns one payload into a time and values,
or raises `BadReading` with the `Quality` reason; `Rows` keeps parsed readings in time order,
bounded, until a `read` turns them into a `Chunk`.
"""

import json
import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from edgestack.sensing.chunk import Chunk
from edgestack.sensing.quality import Quality

Format = Literal["json", "csv"]
TimeFrom = Literal["payload", "arrival"]

_SINGLE_VALUE_KEY = "value"


class BadReading(ValueError):
    """A payload that yields no reading; `reason` is what `Quality` counts it under."""

    def __init__(self, reason: str, example: str) -> None:
        super().__init__(f"{reason}: {example}")
        self.reason = reason
        self.example = example


class Parser:
    """One payload to `(time, values)`, with `values` in the order of `keys`.

    - `csv`: `"t,v1,v2"` (or `"v1,v2"` when the time is the arrival time); exactly one column
      per key, the key names only count.
    - `json`: an object with the time under `time_key` and each value under its key; other keys
      are ignored. A reading of a single value may give it as `"value"` instead.
    """

    def __init__(
        self, format: Format, keys: Sequence[str], time_from: TimeFrom, time_key: str
    ) -> None:
        self.keys = tuple(keys)
        self._format = format
        self._time_from = time_from
        self._time_key = time_key

    def parse(self, payload: bytes, arrival: float) -> tuple[float, list[float]]:
        try:
            text = payload.decode().strip()
        except UnicodeDecodeError:
            raise BadReading("malformed_payload", repr(payload)) from None
        if not text:
            raise BadReading("malformed_payload", "(empty)")
        fields = self._json_fields(text) if self._format == "json" else self._csv_fields(text)
        numbers = [_number(field, text) for field in fields]
        if self._time_from == "arrival":
            return arrival, numbers
        return numbers[0], numbers[1:]

    def _csv_fields(self, text: str) -> list[str]:
        fields = [field.strip() for field in text.split(",")]
        expected = len(self.keys) + (self._time_from == "payload")
        if len(fields) != expected:
            raise BadReading("wrong_channel_count", f"{len(fields)} fields, not {expected}: {text}")
        return fields

    def _json_fields(self, text: str) -> list[object]:
        try:
            reading = json.loads(text)
        except ValueError:
            raise BadReading("malformed_payload", text) from None
        if not isinstance(reading, dict):
            raise BadReading("malformed_payload", f"not a JSON object: {text}")
        if self._time_from == "payload" and self._time_key not in reading:
            raise BadReading("malformed_payload", f"no {self._time_key!r} key: {text}")
        keys = self.keys
        if len(keys) == 1 and keys[0] not in reading:
            keys = (_SINGLE_VALUE_KEY,)
        missing = [key for key in keys if key not in reading]
        if missing:
            raise BadReading("wrong_channel_count", f"no {', '.join(missing)}: {text}")
        times = [reading[self._time_key]] if self._time_from == "payload" else []
        return [*times, *(reading[key] for key in keys)]


def _number(field: object, text: str) -> float:
    # JSON true/false are ints to Python, but no sensor means 1.0 by them.
    if isinstance(field, bool) or not isinstance(field, str | int | float):
        raise BadReading("non_numeric", text)
    try:
        return float(field)
    except ValueError:
        raise BadReading("non_numeric", text) from None


class Rows:
    """Readings as rows of every channel, oldest first, at most `capacity` of them.

    A reading sets some channels; its row holds the last known value of the others (NaN before
    their first reading). With `merge`, a reading at the same time as the newest row not yet
    read updates that row instead of adding one, so sensors that report the same instant share
    a row. A reading older than the newest one is dropped (`time_backwards`); a full buffer
    drops its oldest row (`buffer_overflow`).
    """

    def __init__(
        self,
        channels: tuple[str, ...],
        units: tuple[str, ...],
        rate_hz: float,
        capacity: int,
        *,
        merge: bool,
    ) -> None:
        self.channels = channels
        self.units = units
        self.rate_hz = rate_hz
        self._last = np.full(len(channels), np.nan, np.float32)
        self._rows: deque[tuple[float, np.ndarray]] = deque(maxlen=capacity)
        self._newest = -math.inf
        self._merge = merge

    def add(self, t: float, columns: Sequence[int], values: Sequence[float], q: Quality) -> None:
        """Add a reading of `values` for channels at `columns` taken at `t`."""
        if not math.isfinite(t):
            q.count("non_numeric", example=f"time {t}")
            return
        if t < self._newest:
            q.count("time_backwards", example=f"{t} after {self._newest}")
            return
        self._last[list(columns)] = values
        row = (t, self._last.copy())
        if self._merge and t == self._newest and self._rows:
            self._rows[-1] = row
            return
        if len(self._rows) == self._rows.maxlen:
            q.count("buffer_overflow", example=f"row at {self._rows[0][0]} dropped")
        self._rows.append(row)
        self._newest = t

    def take(self, n: int) -> Chunk:
        """The oldest `n` rows at most, as a chunk with their `timestamps`."""
        if n < 0:
            raise ValueError(f"n: {n} samples requested; ask for 0 or more")
        rows = [self._rows.popleft() for _ in range(min(n, len(self._rows)))]
        if not rows:
            t0 = self._newest if math.isfinite(self._newest) else 0.0
            return Chunk.empty(t0, self.rate_hz, self.channels, self.units)
        times = np.array([t for t, _ in rows], np.float64)
        data = np.stack([values for _, values in rows], axis=1)
        return Chunk(float(times[0]), self.rate_hz, self.channels, self.units, data, times)


def units_for(
    channels: Sequence[str], units: Mapping[str, str] | Sequence[str] | None
) -> tuple[str, ...]:
    """One unit per channel, from a list in channel order or a channel-to-unit mapping (channels
    it leaves out get `""`)."""
    if units is None:
        return ("",) * len(channels)
    if not isinstance(units, Mapping):
        if len(units) != len(channels):
            raise ValueError(
                f"units: {len(units)} given for {len(channels)} channels "
                f"({', '.join(channels)}); give one per channel, in channel order"
            )
        return tuple(units)
    unknown = sorted(set(units) - set(channels))
    if unknown:
        raise ValueError(
            f"units: {', '.join(unknown)} not among the channels ({', '.join(channels)}); "
            "name units by channel"
        )
    return tuple(units.get(channel, "") for channel in channels)
