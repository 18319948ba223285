"""Bundles from the hub to disk: streamed, hashed on the way, resumed after an interruption.

A download grows in `<digest>.part` beside the bundles and takes its real name only
once its bytes hash to the digest asked for, so a kill at any point leaves either a
complete verified file or a partial one the next attempt resumes. File writes and
hashing run in a worker thread, never on the event loop.
"""

import asyncio
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from edgestack.agent.link import Link
from edgestack.bundle import MAX_BUNDLE_BYTES, BundleError, BundleStore

__all__ = ["KEEP_BUNDLES", "download", "prune", "touch"]

KEEP_BUNDLES = 3  # the running one and two before it: rollback needs no download
_PART = ".part"


async def download(
    link: Link,
    bundles: BundleStore,
    digest: str,
    *,
    accept: Callable[[Path], None] | None = None,
) -> Path:
    """Bring bundle `digest` to disk, unless it is there already; return its path.

    `accept`, called in a thread on the complete file before it takes its name, raises
    `BundleError` to refuse it (its signature, say). Raises `BundleError` when the bytes do
    not hash to `digest` or are refused (the partial file is removed, so the next attempt
    starts afresh) and `HubUnavailable` when the hub cannot send it now (the partial file
    stays, and the next attempt resumes it)."""
    target = bundles.path(digest)
    if target.is_file():
        return target
    part = await asyncio.to_thread(_Part, bundles.root / f"{digest}{_PART}")
    try:
        async with link.artifact(digest, offset=part.size) as artifact:
            if artifact.start != part.size:
                await asyncio.to_thread(part.restart)
            async for chunk in artifact.chunks:
                await asyncio.to_thread(part.write, chunk)
        await asyncio.to_thread(part.finish, digest, target, accept)
    finally:
        await asyncio.to_thread(part.close)
    return target


def prune(bundles: BundleStore, keep: set[str]) -> list[str]:
    """Remove all but the `KEEP_BUNDLES` most recently used bundles and any `keep` names,
    and every partial download but those of `keep`; return the digests removed.
    Blocking: call it in a thread."""
    files = sorted(bundles.root.glob("*.bundle"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    removed = []
    for path in files[KEEP_BUNDLES:]:
        if path.stem not in keep:
            path.unlink(missing_ok=True)
            removed.append(path.stem)
    for path in bundles.root.glob(f"*{_PART}"):
        if path.stem not in keep:
            path.unlink(missing_ok=True)
    return removed


def touch(path: Path) -> None:
    """Mark a bundle as used now, so pruning keeps it among the most recent."""
    os.utime(path)


class _Part:
    """A partial download, its bytes so far hashed, appended to chunk by chunk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "ab+")  # noqa: SIM115 - closed by close(), called from another thread
        self._hash = hashlib.sha256()
        self._file.seek(0)
        while block := self._file.read(1024 * 1024):
            self._hash.update(block)
        self.size = self._file.tell()

    def restart(self) -> None:
        """The hub sent the whole file, not the rest of it: start over."""
        self._file.truncate(0)
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        if self.size + len(chunk) > MAX_BUNDLE_BYTES:
            self.close()
            self.path.unlink(missing_ok=True)
            raise BundleError(f"bundle is over {MAX_BUNDLE_BYTES} bytes, the limit")
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    def finish(self, digest: str, target: Path, accept: Callable[[Path], None] | None) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        got = self._hash.hexdigest()
        try:
            if got != digest:
                raise BundleError(
                    f"digest mismatch: expected {digest}, the bytes hash to {got}; "
                    "the bundle was altered or truncated in transit"
                )
            if accept is not None:
                accept(self.path)
        except BundleError:
            self.close()
            self.path.unlink(missing_ok=True)
            raise
        os.replace(self.path, target)

    def close(self) -> None:
        self._file.close()
