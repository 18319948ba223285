import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgestack.sensing import SOURCES, SerialSource

MakeSource = Callable[..., SerialSource]


class _Device:
    """The far end of a pseudo-terminal pair: what a microcontroller on the port would write."""

    def __init__(self) -> None:
        self._master, self._slave = os.openpty()
        self.port = os.ttyname(self._slave)

    def write(self, data: bytes) -> None:
        os.write(self._master, data)

    def unplug(self) -> None:
        os.close(self._master)
        self._master = -1

    def close(self) -> None:
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)


@pytest.fixture
def device() -> Iterator[_Device]:
    device = _Device()
    yield device
    device.close()


@pytest.fixture
def make_source() -> Iterator[MakeSource]:
    made: list[SerialSource] = []

    def make(**params: Any) -> SerialSource:
        source = SOURCES.build("serial", params)
        assert isinstance(source, SerialSource)
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


def test_lines_arriving_in_pieces_come_through_whole(
    device: _Device, make_source: MakeSource, read_rows: Any
) -> None:
    source = make_source(port=device.port, channels=["x", "y"], units=["mm", "mm"])

    device.write(b"1.0,2")
    early = source.read(10)
    device.write(b"0,3\r\n2.0,4,5\n")
    chunk = read_rows(source, 2)

    assert early.n == 0
    assert chunk.channels == ("x", "y")
    assert chunk.units == ("mm", "mm")
    np.testing.assert_array_equal(chunk.timestamps, [1.0, 2.0])
    np.testing.assert_array_equal(chunk.data, [[20, 4], [3, 5]])


def test_garbage_lines_are_counted_and_good_ones_come_through(
    device: _Device, make_source: MakeSource, read_rows: Any
) -> None:
    source = make_source(port=device.port, channels=["x", "y"])

    device.write(b"\xff\xfe\nhello\n3.0,1\n4.0,a,b\n\n5.0,1,2\n0.5,1,2\n6.0,3,4\n")
    chunk = read_rows(source, 2)

    np.testing.assert_array_equal(chunk.timestamps, [5.0, 6.0])
    assert source.quality.take()[0] == {
        "malformed_payload": 1,
        "wrong_channel_count": 2,
        "non_numeric": 1,
        "time_backwards": 1,
    }


def test_json_lines_map_their_keys_to_channels(
    device: _Device, make_source: MakeSource, read_rows: Any
) -> None:
    source = make_source(
        port=device.port, channels=["distance"], format="json", fields={"d": "distance"}
    )

    device.write(b'{"t": 7.5, "d": 30, "seq": 1}\n{"t": 8.5, "value": 31}\n')
    chunk = read_rows(source, 2)

    np.testing.assert_array_equal(chunk.timestamps, [7.5, 8.5])
    np.testing.assert_array_equal(chunk.data, [[30, 31]])


def test_a_line_that_never_ends_is_dropped_once_up_to_its_newline(
    device: _Device, make_source: MakeSource, read_rows: Any
) -> None:
    source = make_source(port=device.port, channels=["x"])

    # Written in pieces, read in between: the pseudo-terminal holds only a few KiB.
    for _ in range(10):
        device.write(b"7" * 1000)
        source.read(10)
    device.write(b"\n9.0,1\n")
    chunk = read_rows(source, 1)

    np.testing.assert_array_equal(chunk.timestamps, [9.0])
    assert source.quality.take()[0] == {"malformed_payload": 1}


def test_a_port_that_fails_or_is_missing_is_counted_not_raised(
    device: _Device, make_source: MakeSource, tmp_path: Path
) -> None:
    unplugged = make_source(port=device.port, channels=["x"])
    missing = make_source(port=str(tmp_path / "no-such-port"), channels=["x"])

    device.unplug()
    chunks = [unplugged.read(5), missing.read(5)]

    assert all(chunk.data.shape == (1, 0) for chunk in chunks)
    assert unplugged.quality.take()[0] == {"port_error": 1}
    assert missing.quality.take()[0] == {"port_error": 1}
