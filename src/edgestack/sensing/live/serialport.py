"""Sensor readings sent line by line over a serial port (USB-serial adapters, microcontrollers).

source = SerialSource("/dev/ttyUSB0", ["distance"], baudrate=9600, time_from="arrival",
                      units={"distance": "mm"})
chunk = source.read(100)   # the lines that arrived since the last read, at most 100
"""

import time
from collections.abc import Mapping, Sequence
from typing import Annotated

import serial
from pydantic import Field

from edgestack.sensing.chunk import Chunk
from edgestack.sensing.live._payload import BadReading, Format, Parser, Rows, TimeFrom, units_for
from edgestack.sensing.quality import Quality
from edgestack.sensing.source import SOURCES

__all__ = ["SerialSource"]

_READ_BYTES = 65536
# A device at the wrong baud rate sends noise with no newline; holding it would grow without
# bound, so a "line" this long is dropped, up to its newline, as one malformed payload.
_MAX_LINE_BYTES = 4096
_RETRY_S = 1.0


@SOURCES.register("serial")
class SerialSource:
    """Readings from a serial port, one per line; implements `Source` and never blocks.

    Each line is a CSV (`t,v1,v2` or, with `time_from="arrival"`, `v1,v2`) or JSON reading of
    every channel, parsed as `MqttSource` payloads are (`fields`, `time_from`, `time_key` and
    `units` too); a line that is still arriving waits for its newline; blank lines are skipped.
    Lines read together share an arrival time but stay separate rows. Bad lines are counted in
    `quality` (`malformed_payload`, `wrong_channel_count`, `non_numeric`, `time_backwards`,
    `buffer_overflow`); a port that cannot be opened or fails is counted as `port_error` and
    opened again on a later read, at most once a second.
    """

    def __init__(
        self,
        port: str,
        channels: Sequence[str],
        baudrate: Annotated[int, Field(gt=0)] = 115200,
        format: Format = "csv",
        fields: Mapping[str, str] | None = None,
        time_from: TimeFrom = "payload",
        time_key: str = "t",
        units: Mapping[str, str] | Sequence[str] | None = None,
        rate_hz: Annotated[float, Field(gt=0)] = 1.0,
        buffer: Annotated[int, Field(gt=0)] = 10_000,
    ) -> None:
        if not channels:
            raise ValueError("channels: name the channels each line carries, in line order")
        self.channels = tuple(channels)
        self.units = units_for(self.channels, units)
        self.rate_hz = float(rate_hz)
        self.quality = Quality()
        key_of = {channel: key for key, channel in (fields or {}).items()}
        self._parser = Parser(format, [key_of.get(c, c) for c in channels], time_from, time_key)
        self._columns = range(len(self.channels))
        self._rows = Rows(self.channels, self.units, self.rate_hz, buffer, merge=False)
        self._name = port
        self._baudrate = baudrate
        self._port: serial.Serial | None = None
        self._partial = b""
        self._overlong = False
        self._retry_at = -float("inf")
        self._closed = False
        self._open()

    def read(self, n: int) -> Chunk:
        arrival = time.time()
        *lines, self._partial = (self._partial + self._receive()).split(b"\n")
        if self._overlong and lines:
            lines.pop(0)  # the end of a line already dropped as too long
            self._overlong = False
        if len(self._partial) > _MAX_LINE_BYTES:
            if not self._overlong:
                example = f"over {_MAX_LINE_BYTES} bytes without a newline: {self._partial[:80]!r}"
                self.quality.count("malformed_payload", example=example)
            self._overlong = True
            self._partial = b""
        for line in lines:
            if not line.strip():
                continue
            try:
                t, values = self._parser.parse(line, arrival)
            except BadReading as bad:
                self.quality.count(bad.reason, example=bad.example)
                continue
            self._rows.add(t, self._columns, values, self.quality)
        return self._rows.take(n)

    def close(self) -> None:
        self._closed = True
        self._drop_port()

    def _receive(self) -> bytes:
        port = None if self._closed else self._port or self._open()
        if port is None:
            return b""
        try:
            return bytes(port.read(_READ_BYTES))
        except serial.SerialException as exc:
            self._fail(exc)
            return b""

    def _open(self) -> serial.Serial | None:
        if time.monotonic() < self._retry_at:
            return None
        try:
            self._port = serial.Serial(self._name, self._baudrate, timeout=0)
        except serial.SerialException as exc:
            self._fail(exc)
        return self._port

    def _fail(self, exc: serial.SerialException) -> None:
        self.quality.count("port_error", example=f"{self._name}: {exc}")
        self._drop_port()
        # Whatever was half received belongs to a line that will never be finished.
        self._partial = b""
        self._overlong = False
        self._retry_at = time.monotonic() + _RETRY_S

    def _drop_port(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None
