"""Reading live sources in tests: keep reading until the expected rows came, within a deadline."""

import time
from collections.abc import Callable

import numpy as np
import pytest

from edgestack.sensing import Chunk, Source

ReadRows = Callable[[Source, int], Chunk]

_DEADLINE_S = 10.0


def _read_rows(source: Source, rows: int) -> Chunk:
    """Exactly `rows` rows from `source`, read as they arrive; fails after the deadline."""
    chunks: list[Chunk] = []
    got = 0
    deadline = time.monotonic() + _DEADLINE_S
    while got < rows:
        if time.monotonic() > deadline:
            pytest.fail(f"{got} of {rows} rows arrived in {_DEADLINE_S} s")
        chunk = source.read(rows - got)
        chunks.append(chunk)
        got += chunk.n
        if not chunk.n:
            time.sleep(0.01)
    first = chunks[0]
    times = np.concatenate([c.times() for c in chunks])
    data = np.concatenate([c.data for c in chunks], axis=1)
    return first.with_data(data, t0=float(times[0]), timestamps=times)


@pytest.fixture
def read_rows() -> ReadRows:
    return _read_rows
