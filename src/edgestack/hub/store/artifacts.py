"""Bundles on the hub's disk checked against their digest before they are served."""

import hashlib
import threading
from pathlib import Path
from typing import NamedTuple

from edgestack.bundle import BundleStore

__all__ = ["CheckedArtifacts", "Verdict"]

_CHUNK = 1024 * 1024


class Verdict(NamedTuple):
    path: Path
    sound: bool
    fresh: bool
    """Whether the file was hashed by this check rather than remembered."""


class CheckedArtifacts:
    """Which stored bundles hash to their name. A file is hashed again only when its size
    or modification time changed since it was last hashed."""

    def __init__(self, bundles: BundleStore) -> None:
        self.bundles = bundles
        self._lock = threading.Lock()
        self._verdicts: dict[str, tuple[int, int, bool]] = {}

    def check(self, key: str) -> Verdict:
        """The file of bundle `key` and whether it hashes to `key`. Blocks while it hashes:
        call it off the event loop. Raises FileNotFoundError when no such bundle is stored."""
        path = self.bundles.path(key)
        stat = path.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            known = self._verdicts.get(key)
        if known is not None and known[:2] == stamp:
            return Verdict(path, known[2], fresh=False)
        sound = _sha256(path) == key
        with self._lock:
            self._verdicts[key] = (*stamp, sound)
        return Verdict(path, sound, fresh=True)


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()
