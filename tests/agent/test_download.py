import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from edgestack.agent.download import KEEP_BUNDLES, download, prune
from edgestack.agent.link import HubLink, HubUnavailable
from edgestack.bundle import BundleError, BundleStore, digest

DATA = bytes(range(256)) * 4096  # 1 MiB: several chunks


class _CutAfter(httpx.AsyncByteStream):
    """A body that breaks off after `keep` bytes, as a dropped connection does."""

    def __init__(self, data: bytes, keep: int) -> None:
        self._data, self._keep = data, keep

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._data[: self._keep]
        raise httpx.ReadError("connection reset")


class _Hub:
    """Serves DATA as the artifact; the first answer breaks off half way."""

    def __init__(self, *, honour_range: bool = True, body: bytes = DATA) -> None:
        self.ranges: list[str | None] = []
        self.honour_range = honour_range
        self.body = body

    def __call__(self, request: httpx.Request) -> httpx.Response:
        asked = request.headers.get("Range")
        self.ranges.append(asked)
        if len(self.ranges) == 1:
            return httpx.Response(200, stream=_CutAfter(self.body, len(self.body) // 2))
        if asked and self.honour_range:
            start = int(asked.removeprefix("bytes=").removesuffix("-"))
            return httpx.Response(206, content=self.body[start:])
        return httpx.Response(200, content=self.body)

    def link(self) -> HubLink:
        return HubLink("http://hub", transport=httpx.MockTransport(self))


@pytest.mark.anyio
@pytest.mark.parametrize("honour_range", [True, False])
async def test_an_interrupted_download_resumes_and_lands_whole(
    tmp_path: Path, honour_range: bool
) -> None:
    hub = _Hub(honour_range=honour_range)
    link = hub.link()
    bundles = BundleStore(tmp_path)
    key = digest(DATA)

    with pytest.raises(HubUnavailable):
        await download(link, bundles, key)
    assert (tmp_path / f"{key}.part").stat().st_size == len(DATA) // 2
    path = await download(link, bundles, key)

    assert hub.ranges == [None, f"bytes={len(DATA) // 2}-"]
    assert path.read_bytes() == DATA
    assert list(tmp_path.glob("*.part")) == []
    await link.aclose()


@pytest.mark.anyio
async def test_bytes_that_do_not_hash_to_the_digest_leave_nothing_behind(tmp_path: Path) -> None:
    hub = _Hub(body=DATA[:-1] + b"!")
    link = hub.link()
    bundles = BundleStore(tmp_path)
    key = digest(DATA)

    with pytest.raises(HubUnavailable):
        await download(link, bundles, key)
    with pytest.raises(BundleError, match="digest mismatch"):
        await download(link, bundles, key)

    assert list(tmp_path.iterdir()) == []
    await link.aclose()


def test_prune_keeps_the_newest_bundles_and_those_asked_for(tmp_path: Path) -> None:
    bundles = BundleStore(tmp_path)
    names = [f"{i:064x}" for i in range(6)]
    for age, name in enumerate(names):
        path = bundles.path(name)
        path.write_bytes(b"x")
        stamp = 1_000_000 + age
        os.utime(path, (stamp, stamp))
    (tmp_path / f"{names[0]}.part").write_bytes(b"half")
    (tmp_path / f"{names[1]}.part").write_bytes(b"half")

    removed = prune(bundles, keep={names[0]})

    assert sorted(removed) == sorted(names[1 : len(names) - KEEP_BUNDLES])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{names[0]}.bundle", f"{names[0]}.part"] + [f"{n}.bundle" for n in names[-KEEP_BUNDLES:]]
    )
