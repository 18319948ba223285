"""The hub's signing keys: Ed25519, made at first start, rotated on request.

Each private key is a file of its own, readable by the hub's user only. `keys.json` lists
the public keys in the order they were made, each made by rotation endorsed by the one
before it: a device that pinned an older key at enrolment learns the newer one from the
key chain a signed manifest carries, so rotating needs no device to enrol again. The
newest key signs; the older ones stay in the list, so bundles they signed still verify.

Hub replicas may share the directory: a file lock makes the first key once and one rotation
at a time, each on the newest list, and every replica reads the list again when it changed,
so it signs with the key another replica rotated to.
"""

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import TypeAdapter

from edgestack.bundle import Manifest, PublicKey, key_id

__all__ = ["HubKeys"]

_Keys = TypeAdapter(list[PublicKey])
_INDEX = "keys.json"
_LOCK = "keys.lock"


class HubKeys:
    """The signing keys kept in `root`; the first is made when there is none."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        self._lock = threading.Lock()
        self._public: list[PublicKey] = []
        self._signer: Ed25519PrivateKey | None = None
        self._read: tuple[int, int, int] | None = None
        with self._lock, self._changing():
            if not self._public:
                self._add(Ed25519PrivateKey.generate(), endorser=None)

    def public(self) -> list[PublicKey]:
        """Every key devices should trust, oldest first; the last one signs."""
        with self._lock:
            self._refresh()
            return list(self._public)

    def sign(self, manifest: Manifest, *, ttl: timedelta) -> Manifest:
        """`manifest` signed by the newest key, valid for `ttl` from now."""
        with self._lock:
            signer = self._signing()
            unsigned = manifest.model_copy(
                update={
                    "key_id": self._public[-1].key_id,
                    "key_chain": self._public[1:],
                    "expires_at": datetime.now(UTC) + ttl,
                    "signature": None,
                }
            )
            signature = signer.sign(unsigned.signed_bytes()).hex()
        return unsigned.model_copy(update={"signature": signature})

    def rotate(self) -> PublicKey:
        """Make a new key, endorsed by the current one, and sign with it from now on."""
        with self._lock, self._changing():
            return self._add(Ed25519PrivateKey.generate(), endorser=self._signing())

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """Hold the directory against other processes' changes, with the newest list read."""
        fd = os.open(self.root / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._refresh()
            yield
        finally:
            # Closing the file releases the lock.
            os.close(fd)

    def _refresh(self) -> None:
        """Read the list again if another process changed it since this one read it.

        The list is replaced by a rename, after the private key it adds is written, so any
        version read here is whole and each key in it can be loaded."""
        index = self.root / _INDEX
        try:
            stat = index.stat()
        except FileNotFoundError:
            return
        read = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if read != self._read:
            self._public = _Keys.validate_json(index.read_bytes())
            self._signer = self._private(self._public[-1].key_id) if self._public else None
            self._read = read

    def _signing(self) -> Ed25519PrivateKey:
        """The newest key, which signs."""
        self._refresh()
        if self._signer is None:
            raise ValueError(f"{self.root / _INDEX} lists no key; the hub made one at start")
        return self._signer

    def _add(self, private: Ed25519PrivateKey, endorser: Ed25519PrivateKey | None) -> PublicKey:
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        key = PublicKey(key_id=key_id(raw), public_key=raw.hex())
        if endorser is not None:
            key = key.model_copy(
                update={
                    "endorsed_by": self._public[-1].key_id,
                    "endorsement": endorser.sign(key.endorsed_bytes()).hex(),
                }
            )
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # The private key first: an index naming a key whose file is missing could not sign.
        _write(self.root / f"{key.key_id}.pem", pem)
        self._public.append(key)
        self._signer = private
        _write(self.root / _INDEX, _Keys.dump_json(self._public, indent=2))
        return key

    def _private(self, key: str) -> Ed25519PrivateKey:
        loaded = serialization.load_pem_private_key(
            (self.root / f"{key}.pem").read_bytes(), password=None
        )
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ValueError(f"{key}.pem in {self.root} is not an Ed25519 private key")
        return loaded


def _write(path: Path, data: bytes) -> None:
    """Write aside with mode 0600 from the start, then rename over `path`."""
    part = path.with_suffix(path.suffix + ".part")
    part.unlink(missing_ok=True)
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(part, path)
