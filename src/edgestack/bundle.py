"""The model bundle: the unit of deployment.

A bundle is a tar archive holding ``manifest.json`` and ``model.onnx`` (``sources.tar``, the
C sources, for a microcontroller: the manifest's `target` says which). It is
packed deterministically, so the same model and manifest always give the same
bytes, and it is addressed by the sha256 of those bytes (its *digest*). What
trained a model and what runs it read the same manifest.

    data = Bundle.create(name="m", version=1, labels=["ok", "worn"], input=spec, model=onnx).pack()
    Bundle.unpack(data, expected_digest=digest(data))   # raises BundleError if anything is off

The hub signs each manifest it registers with its Ed25519 key; a device verifies the
signature against the keys it pinned at enrolment (`TrustedKeys`) before it stores a bundle.
"""

import hashlib
import io
import itertools
import json
import os
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

__all__ = [
    "Bundle",
    "BundleError",
    "BundleStore",
    "Calibration",
    "Digest",
    "FeatureSpec",
    "Footprint",
    "InputSpec",
    "KeyId",
    "Lineage",
    "Manifest",
    "Name",
    "PublicKey",
    "Reference",
    "SignatureError",
    "SplitPlan",
    "StageSpec",
    "Target",
    "TrustedKeys",
    "digest",
    "key_id",
]

Digest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
KeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
_RawKey = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
_Signature = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{128}$")]

MANIFEST = "manifest.json"
MODEL = "model.onnx"
SOURCES = "sources.tar"
Target = Literal["onnx", "c"]
"""What a bundle's model is: an ONNX graph (`model.onnx`) that agents run through ONNX Runtime,
or C sources (`sources.tar`) to compile into a microcontroller's firmware."""
_MEMBERS: dict[str, str] = {"onnx": MODEL, "c": SOURCES}
MAX_BUNDLE_BYTES = 256 * 1024 * 1024
# Fields added since signing began, with the value that leaves each out of the signed bytes.
_ADDED_SINCE_SIGNING: dict[str, object] = {
    "reference": None,
    "calibration": None,
    "target": "onnx",
    "split": None,
}
_MAX_CALIBRATION_BINS = 64


class BundleError(ValueError):
    """A bundle that cannot be trusted or read; the message says why."""


class SignatureError(BundleError):
    """A bundle whose signature does not hold; `reason` says which check failed:
    `unsigned`, `unknown_key` (signed by no key this device trusts), `forged` (the signature
    does not match the manifest) or `expired`."""

    def __init__(
        self, reason: Literal["unsigned", "unknown_key", "forged", "expired"], message: str
    ) -> None:
        super().__init__(f"signature {reason}: {message}")
        self.reason = reason


class StageSpec(BaseModel):
    """One processing step by its registered name, with that step's parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)


class FeatureSpec(StageSpec):
    """One feature extractor over some of the sensors (all of them when `channels` is left out)."""

    channels: list[str] | None = None


class InputSpec(BaseModel):
    """What a model expects: which sensors at what rate, the steps that clean them, the
    windows cut from them and the features extracted, whose column names are `features`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sensors: list[str] = Field(min_length=1)
    rate_hz: float = Field(gt=0)
    window: int = Field(ge=1)
    hop: int = Field(ge=1)
    steps: list[StageSpec] = Field(default_factory=list)
    extractors: list[FeatureSpec] = Field(min_length=1)
    features: list[str] = Field(min_length=1)

    def fingerprint(self) -> str:
        """A short stable id: two specs with the same fingerprint produce the same features."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


class Footprint(BaseModel):
    """What running a model costs, measured on the reference machine."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_bytes: int = Field(ge=0, description="flash it needs: model.onnx, or the compiled C")
    peak_ram_bytes: int = Field(
        ge=0, description="memory a session running it adds, or the C's data, bss and stack"
    )
    latency_ms_p50: float = Field(ge=0)
    latency_ms_p99: float = Field(ge=0)


class Lineage(BaseModel):
    """Where a model came from: the data, the trainer and its settings, and for an optimised
    model the one it was made from and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str | None = None
    dataset_version: int | None = Field(default=None, ge=1)
    trainer: str
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0
    parent: Digest | None = Field(default=None, description="the bundle this was optimised from")
    optimisation: str | None = Field(default=None, description="fp16, int8_static, pruned, ...")


class Reference(BaseModel):
    """Statistics of the training rows that live inputs are compared with for drift: per
    feature, in the order of `input.features`, the ascending edges of its bins (quantiles of
    the training rows) and the share of training rows in each. Bin `i` holds values `v` with
    `edges[i-1] <= v < edges[i]`; the first and last bins are open."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: int = Field(ge=1, description="training rows the statistics were taken from")
    edges: list[list[Annotated[float, Field(allow_inf_nan=False)]]] = Field(
        min_length=1, description="per feature, ascending edges: one fewer than its bins"
    )
    shares: list[list[Annotated[float, Field(ge=0, le=1)]]] = Field(
        min_length=1, description="per feature, the share of training rows per bin"
    )

    @model_validator(mode="after")
    def _fits(self) -> "Reference":
        if len(self.edges) != len(self.shares):
            raise ValueError(
                f"edges has {len(self.edges)} features and shares {len(self.shares)}; "
                "give one row of each per feature"
            )
        for i, (edges, shares) in enumerate(zip(self.edges, self.shares, strict=True)):
            if len(shares) != len(edges) + 1 or len(shares) != len(self.shares[0]):
                raise ValueError(
                    f"feature {i}: {len(edges)} edges need {len(edges) + 1} shares, the same "
                    f"number for every feature; it has {len(shares)}"
                )
            if any(b < a for a, b in itertools.pairwise(edges)):
                raise ValueError(f"feature {i}: edges must ascend")
        return self


class Calibration(BaseModel):
    """How often the model was right on its held-out rows, per bin of its top-class
    probability (equal bins over [0, 1], as `monitoring.CONFIDENCE_BINS` counts them live):
    what turns a live confidence histogram into an expected accuracy without labels. A bin
    no held-out row fell in holds its centre, the accuracy a calibrated model would have."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accuracy: list[Annotated[float, Field(ge=0, le=1)]] = Field(
        min_length=1, max_length=_MAX_CALIBRATION_BINS, description="per bin, the share right"
    )
    rows: list[Annotated[int, Field(ge=0)]] = Field(
        min_length=1, max_length=_MAX_CALIBRATION_BINS, description="held-out rows per bin"
    )

    @model_validator(mode="after")
    def _one_count_per_bin(self) -> "Calibration":
        if len(self.rows) != len(self.accuracy):
            raise ValueError(
                f"rows has {len(self.rows)} bins and accuracy {len(self.accuracy)}; give one "
                "of each per bin"
            )
        return self


class SplitPlan(BaseModel):
    """Where a net with an early exit is cut between a device and a server, and why: the
    device runs the first `at` of its `blocks` and the exit, answers alone when the exit's
    top probability is at least `threshold`, and sends the rest on as `offload_bytes` of
    intermediate tensor. `expected_ms` is the end-to-end latency per window the choice
    expects, `early_share` of the windows leaving at the exit. `at` 0 sends the input
    itself; `at` equal to `blocks` keeps everything on the device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: int = Field(ge=0, description="blocks the device runs")
    blocks: int = Field(ge=1, description="blocks of the whole net")
    point: str = Field(min_length=1, description="the last block on the device, or input")
    threshold: float = Field(ge=0, le=1, description="exit confidence that answers alone")
    early_share: float = Field(ge=0, le=1, description="share of windows leaving at the exit")
    expected_ms: float = Field(ge=0, allow_inf_nan=False)
    offload_bytes: int = Field(ge=0, description="bytes sent per offloaded window")
    scale: float | None = Field(default=None, gt=0, description="int8 tensor: its scale")
    zero_point: int | None = Field(default=None, ge=-128, le=127)

    @model_validator(mode="after")
    def _within_the_net(self) -> "SplitPlan":
        if self.at > self.blocks:
            raise ValueError(
                f"at: {self.at} blocks on the device, the net has {self.blocks}; give at most "
                "blocks"
            )
        if (self.scale is None) != (self.zero_point is None):
            raise ValueError("scale and zero_point: give both for an int8 tensor, or neither")
        return self


class PublicKey(BaseModel):
    """A hub's signing key as devices pin it. A key made by rotation is endorsed by the key
    that signed before it, so a device that pinned the older key comes to trust the new one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: KeyId = Field(description="the first 16 hex digits of the raw key's sha256")
    public_key: _RawKey = Field(description="the raw Ed25519 public key, hex")
    endorsed_by: KeyId | None = None
    endorsement: _Signature | None = Field(
        default=None, description="endorsed_by's signature over endorsed_bytes()"
    )

    def endorsed_bytes(self) -> bytes:
        """What an endorsement signs: this key's id and raw key."""
        return f"edgestack-key:{self.key_id}:{self.public_key}".encode()


def key_id(raw_public_key: bytes) -> str:
    """The id of a raw Ed25519 public key."""
    return hashlib.sha256(raw_public_key).hexdigest()[:16]


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal[1] = 1
    target: Target = Field(
        default="onnx", description="onnx: model.onnx for ONNX Runtime; c: sources.tar to compile"
    )
    name: Name
    version: int = Field(ge=1)
    labels: list[str] = Field(min_length=1)
    input: InputSpec
    metrics: dict[str, float] = Field(default_factory=dict)
    footprint: Footprint | None = None
    lineage: Lineage | None = None
    reference: Reference | None = Field(
        default=None, description="training statistics of the input features, for drift"
    )
    calibration: Calibration | None = Field(
        default=None, description="held-out accuracy per confidence bin, to estimate accuracy"
    )
    split: SplitPlan | None = Field(
        default=None, description="a split net: where it is cut between device and server"
    )
    model_sha256: Digest
    created_at: datetime
    key_id: KeyId | None = Field(default=None, description="the hub key that signed it")
    key_chain: list[PublicKey] = Field(
        default_factory=list,
        description="the hub's keys up to key_id, each endorsed by the one before, for "
        "devices that pinned an older key",
        max_length=100,
    )
    expires_at: datetime | None = Field(default=None, description="devices refuse it after")
    signature: _Signature | None = Field(
        default=None, description="Ed25519 over signed_bytes(), hex; set by the hub"
    )

    @model_validator(mode="after")
    def _reference_fits_input(self) -> "Manifest":
        if self.reference is not None and len(self.reference.edges) != len(self.input.features):
            raise ValueError(
                f"reference has {len(self.reference.edges)} features, input.features "
                f"{len(self.input.features)}; take the reference from the same rows"
            )
        return self

    def signed_bytes(self) -> bytes:
        """What the signature covers: the manifest without its signature, as compact JSON
        with sorted keys, so it does not depend on how manifest.json was laid out. A field
        added since signing began is left out while it holds its default, so manifests signed
        before it existed still verify."""
        fields = self.model_dump(mode="json", exclude={"signature", *self.unset_since()})
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def unset_since(self) -> set[str]:
        """The fields added since signing began that hold their default: left out of the
        signed bytes and of manifest.json, so a reader from before them reads the manifest."""
        return {
            name for name, unset in _ADDED_SINCE_SIGNING.items() if getattr(self, name) == unset
        }


class TrustedKeys:
    """The hub keys a device trusts: those it pinned at enrolment and those they endorsed.

    trusted = TrustedKeys(enrol_response.signing_keys)
    trusted.verify(bundle.manifest)   # raises SignatureError naming the reason
    """

    def __init__(self, keys: Iterable[PublicKey]) -> None:
        self._keys = {key.key_id: key for key in keys}

    @property
    def keys(self) -> list[PublicKey]:
        return list(self._keys.values())

    def verify(self, manifest: Manifest, *, now: datetime | None = None) -> bool:
        """Check the manifest's signature; True when its key chain taught new trusted keys
        (worth saving), which happens only for a manifest whose signature holds."""
        if manifest.signature is None or manifest.key_id is None:
            raise SignatureError(
                "unsigned", "the manifest carries no signature; register it with the hub"
            )
        learnt = self._endorsed(manifest.key_chain)
        signer = learnt.get(manifest.key_id) or self._keys.get(manifest.key_id)
        if signer is None:
            raise SignatureError(
                "unknown_key",
                f"key {manifest.key_id} is not one this device pinned, nor endorsed by one; "
                "enrol the device again with the hub that signed it",
            )
        if not _holds(signer.public_key, manifest.signature, manifest.signed_bytes()):
            raise SignatureError(
                "forged",
                f"the signature of key {manifest.key_id} does not match the manifest: "
                "it was altered after signing",
            )
        when = now or datetime.now(UTC)
        if manifest.expires_at is not None and manifest.expires_at <= when:
            raise SignatureError(
                "expired",
                f"the signature expired at {manifest.expires_at.isoformat()}; register the "
                "model again for a fresh signature",
            )
        self._keys.update(learnt)
        return bool(learnt)

    def _endorsed(self, chain: list[PublicKey]) -> dict[str, PublicKey]:
        learnt: dict[str, PublicKey] = {}
        for link in chain:
            if link.key_id in self._keys or link.key_id in learnt:
                continue
            endorser = learnt.get(link.endorsed_by or "") or self._keys.get(link.endorsed_by or "")
            if (
                endorser is not None
                and link.endorsement is not None
                and link.key_id == key_id(bytes.fromhex(link.public_key))
                and _holds(endorser.public_key, link.endorsement, link.endorsed_bytes())
            ):
                learnt[link.key_id] = link
        return learnt


def _holds(public_key: str, signature: str, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(
            bytes.fromhex(signature), message
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Bundle:
    manifest: Manifest
    model: bytes

    @classmethod
    def create(
        cls,
        *,
        name: str,
        version: int = 1,
        labels: list[str],
        input: InputSpec,
        model: bytes,
        metrics: dict[str, float] | None = None,
        footprint: Footprint | None = None,
        lineage: Lineage | None = None,
        reference: Reference | None = None,
        calibration: Calibration | None = None,
        target: Target = "onnx",
        split: SplitPlan | None = None,
    ) -> "Bundle":
        """A bundle of `model`, unsigned; the hub sets its version and signs it when it
        registers it, so `version` matters only to bundles that never meet a hub."""
        manifest = Manifest(
            target=target,
            name=name,
            version=version,
            labels=labels,
            input=input,
            metrics=metrics or {},
            footprint=footprint,
            lineage=lineage,
            reference=reference,
            calibration=calibration,
            split=split,
            model_sha256=digest(model),
            created_at=datetime.now(UTC),
        )
        return cls(manifest, model)

    def pack(self) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for member, payload in (
                (
                    MANIFEST,
                    self.manifest.model_dump_json(
                        indent=2, exclude=self.manifest.unset_since()
                    ).encode(),
                ),
                (_MEMBERS[self.manifest.target], self.model),
            ):
                info = tarfile.TarInfo(member)
                info.size = len(payload)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(payload))
        return buffer.getvalue()

    @classmethod
    def unpack(cls, data: bytes, *, expected_digest: str | None = None) -> "Bundle":
        """Read and verify a packed bundle; raise `BundleError` naming what is wrong."""
        if expected_digest is not None and digest(data) != expected_digest:
            raise BundleError(
                f"digest mismatch: expected {expected_digest}, the bytes hash to {digest(data)}; "
                "the bundle was altered or truncated in transit"
            )
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
                files = {m.name: m for m in tar.getmembers() if m.isfile()}
                if MANIFEST not in files:
                    raise BundleError(f"bundle lacks {MANIFEST}")
                manifest = _manifest(_read(tar, files[MANIFEST]))
                member = _MEMBERS[manifest.target]
                if member not in files:
                    raise BundleError(
                        f"bundle lacks {member}, its manifest's target {manifest.target}"
                    )
                model = _read(tar, files[member])
        except tarfile.TarError as exc:
            raise BundleError(f"bundle is not a tar archive: {exc}") from exc
        if digest(model) != manifest.model_sha256:
            raise BundleError(
                f"{member} does not match manifest.model_sha256: the model was replaced "
                "after the manifest was written; repack the bundle"
            )
        return cls(manifest, model)


def _manifest(raw: bytes) -> Manifest:
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "manifest"
        raise BundleError(f"manifest.json: {where}: {first['msg']}") from exc


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    if handle is None:
        raise BundleError(f"{member.name} cannot be read")
    return handle.read()


class BundleStore:
    """Packed bundles on disk, one file per digest, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.bundle"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def put(self, data: bytes, *, expected_digest: str | None = None) -> Bundle:
        """Verify and store; return the bundle. Nothing is written if verification fails."""
        if len(data) > MAX_BUNDLE_BYTES:
            raise BundleError(f"bundle is {len(data)} bytes; the limit is {MAX_BUNDLE_BYTES}")
        bundle = Bundle.unpack(data, expected_digest=expected_digest)
        target = self.path(digest(data))
        if not target.exists():
            # Write aside and rename, so a kill mid-write never leaves a half bundle under its name.
            fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".part")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return bundle

    def load(self, key: str) -> Bundle:
        return Bundle.unpack(self.path(key).read_bytes(), expected_digest=key)
