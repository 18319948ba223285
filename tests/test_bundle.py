import contextlib
import io
import json
import tarfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field, ValidationError, model_validator

from edgestack.bundle import (
    Bundle,
    BundleError,
    BundleStore,
    Calibration,
    FeatureSpec,
    InputSpec,
    Manifest,
    Reference,
    SignatureError,
    SplitPlan,
    TrustedKeys,
    digest,
)
from edgestack.hub.signing import HubKeys
from edgestack.monitoring import reference

SPEC = InputSpec(
    sensors=["a"],
    rate_hz=100.0,
    window=16,
    hop=8,
    extractors=[FeatureSpec(kind="time_stats")],
    features=["a.rms"],
)


def make(model: bytes = b"model-bytes", version: int = 1) -> Bundle:
    return Bundle.create(name="m", version=version, labels=["x", "y"], input=SPEC, model=model)


def retar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def test_pack_is_deterministic_and_round_trips() -> None:
    bundle = make()

    data = bundle.pack()

    assert data == bundle.pack()
    assert Bundle.unpack(data, expected_digest=digest(data)) == bundle


def test_wrong_digest_is_refused() -> None:
    data = make().pack()

    with pytest.raises(BundleError, match="digest mismatch"):
        Bundle.unpack(data, expected_digest="0" * 64)


def test_model_swapped_after_manifest_is_refused() -> None:
    bundle = make()
    tampered = retar(
        {"manifest.json": bundle.manifest.model_dump_json().encode(), "model.onnx": b"evil"}
    )

    with pytest.raises(BundleError, match="model_sha256"):
        Bundle.unpack(tampered)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a tar", "not a tar archive"),
        (retar({"model.onnx": b"x"}), "lacks manifest.json"),
        (retar({"manifest.json": b"{}", "model.onnx": b"x"}), "manifest.json: format|name"),
    ],
)
def test_malformed_bundles_name_the_problem(data: bytes, message: str) -> None:
    with pytest.raises(BundleError, match=message):
        Bundle.unpack(data)


def test_store_keeps_verified_bundles_by_digest(tmp_path: Path) -> None:
    store = BundleStore(tmp_path)
    data = make().pack()

    store.put(data, expected_digest=digest(data))

    assert store.has(digest(data))
    assert store.load(digest(data)).model == b"model-bytes"


def test_store_writes_nothing_for_a_bad_bundle(tmp_path: Path) -> None:
    store = BundleStore(tmp_path)
    data = make().pack()

    with pytest.raises(BundleError):
        store.put(data, expected_digest="f" * 64)

    assert list(tmp_path.iterdir()) == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_are_refused_only_as_bundle_errors(data: bytes) -> None:
    with contextlib.suppress(BundleError):
        Bundle.unpack(data)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_altered_byte_is_caught(data: st.DataObject) -> None:
    packed = make().pack()
    position = data.draw(st.integers(0, len(packed) - 1))
    flip = data.draw(st.integers(1, 255))
    altered = bytearray(packed)
    altered[position] ^= flip

    with pytest.raises(BundleError):
        Bundle.unpack(bytes(altered), expected_digest=digest(packed))
    with contextlib.suppress(BundleError):
        Bundle.unpack(bytes(altered))


def test_a_manifest_from_before_signing_still_parses_and_verifies_as_unsigned() -> None:
    bundle = make()
    old = bundle.manifest.model_dump(
        mode="json", exclude={"key_id", "key_chain", "expires_at", "signature"}
    )

    parsed = Manifest.model_validate_json(json.dumps(old))

    assert parsed == bundle.manifest
    with pytest.raises(SignatureError) as refused:
        TrustedKeys([]).verify(parsed)
    assert refused.value.reason == "unsigned"


def test_the_signed_bytes_leave_out_the_signature_and_ignore_layout() -> None:
    manifest = make().manifest.model_copy(update={"signature": "ab" * 64})

    reread = Manifest.model_validate_json(manifest.model_dump_json(indent=4))

    assert reread.signed_bytes() == manifest.signed_bytes()
    assert b"signature" not in manifest.signed_bytes()
    assert b'"key_id":null' in manifest.signed_bytes()


def test_a_manifest_signed_before_it_could_carry_a_reference_still_verifies(
    tmp_path: Path,
) -> None:
    keys = HubKeys(tmp_path)
    signed = keys.sign(make().manifest, ttl=timedelta(days=1))
    # what the hub signed and sent before manifests had a `reference`: no such key at all
    before = json.dumps(signed.model_dump(mode="json", exclude={"reference"}))

    reread = Manifest.model_validate_json(before)

    assert reread.reference is None
    assert b"reference" not in reread.signed_bytes()
    TrustedKeys(keys.public()).verify(reread)


def test_a_reference_is_signed_with_the_manifest_and_round_trips(tmp_path: Path) -> None:
    keys = HubKeys(tmp_path)
    ref = reference(np.random.default_rng(0).normal(size=(200, 1)))
    bundle = Bundle.create(name="m", labels=["x", "y"], input=SPEC, model=b"m", reference=ref)
    signed = keys.sign(bundle.manifest, ttl=timedelta(days=1))
    shares = [[0.5, 0.5, *[0.0] * (len(ref.shares[0]) - 2)]]
    altered = signed.model_copy(update={"reference": ref.model_copy(update={"shares": shares})})

    reread = Bundle.unpack(Bundle(signed, b"m").pack()).manifest

    assert reread.reference == ref
    TrustedKeys(keys.public()).verify(reread)
    with pytest.raises(SignatureError):
        TrustedKeys(keys.public()).verify(altered)


def test_a_calibration_is_signed_with_the_manifest_and_unset_leaves_old_signatures_whole(
    tmp_path: Path,
) -> None:
    keys = HubKeys(tmp_path)
    calibrated = Calibration(accuracy=[0.5, 0.9], rows=[10, 30])
    bundle = Bundle.create(
        name="m", labels=["x", "y"], input=SPEC, model=b"m", calibration=calibrated
    )
    signed = keys.sign(bundle.manifest, ttl=timedelta(days=1))
    altered = signed.model_copy(
        update={"calibration": calibrated.model_copy(update={"accuracy": [0.5, 1.0]})}
    )
    plain = keys.sign(make().manifest, ttl=timedelta(days=1))
    # what the hub signed before manifests had a `calibration`: no such key at all
    before = Manifest.model_validate_json(
        json.dumps(plain.model_dump(mode="json", exclude={"calibration"}))
    )

    reread = Bundle.unpack(Bundle(signed, b"m").pack()).manifest

    assert reread.calibration == calibrated
    TrustedKeys(keys.public()).verify(reread)
    with pytest.raises(SignatureError):
        TrustedKeys(keys.public()).verify(altered)
    assert b"calibration" not in before.signed_bytes()
    TrustedKeys(keys.public()).verify(before)


def test_a_c_bundle_carries_its_sources_under_their_own_name_and_round_trips() -> None:
    sources = retar({"edgestack_model.c": b"int32_t edgestack_predict(const float *w);"})
    bundle = Bundle.create(name="m", labels=["x", "y"], input=SPEC, model=sources, target="c")

    data = bundle.pack()

    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == ["manifest.json", "sources.tar"]
    reread = Bundle.unpack(data)
    assert reread.manifest.target == "c"
    assert reread.model == sources
    assert make().manifest.target == "onnx"
    manifest = bundle.manifest.model_dump_json().encode()
    with pytest.raises(BundleError, match=r"bundle lacks sources\.tar, its manifest's target c"):
        Bundle.unpack(retar({"manifest.json": manifest, "model.onnx": sources}))


def test_a_manifest_signed_before_it_had_a_target_verifies_as_onnx_and_a_target_is_signed(
    tmp_path: Path,
) -> None:
    keys = HubKeys(tmp_path)
    plain = keys.sign(make().manifest, ttl=timedelta(days=1))
    # what the hub signed before manifests had a `target`: no such key at all
    before = Manifest.model_validate_json(
        json.dumps(plain.model_dump(mode="json", exclude={"target"}))
    )
    c = keys.sign(make().manifest.model_copy(update={"target": "c"}), ttl=timedelta(days=1))

    assert before.target == "onnx"
    assert b"target" not in before.signed_bytes()
    TrustedKeys(keys.public()).verify(before)
    TrustedKeys(keys.public()).verify(c)
    with pytest.raises(SignatureError, match="forged"):
        TrustedKeys(keys.public()).verify(c.model_copy(update={"target": "onnx"}))


def test_an_onnx_bundle_reads_as_it_did_before_manifests_had_a_target() -> None:
    class Before(Manifest):
        """The manifest as agents of the previous release read it: no `target` field."""

        target: Any = Field(default="onnx", exclude=True)

        @model_validator(mode="before")
        @classmethod
        def _no_target(cls, data: Any) -> Any:
            assert "target" not in data, "a previous agent refuses a manifest with a target"
            return data

    with tarfile.open(fileobj=io.BytesIO(make().pack())) as tar:
        manifest = tar.extractfile("manifest.json").read()  # type: ignore[union-attr]

    assert Before.model_validate_json(manifest).name == make().manifest.name
    assert b'"target"' not in manifest and b'"reference"' not in manifest


PLAN = SplitPlan(
    at=2,
    blocks=4,
    point="conv2",
    threshold=0.9,
    early_share=0.8,
    expected_ms=12.5,
    offload_bytes=512,
    scale=0.02,
    zero_point=-128,
)


def test_a_split_plan_is_signed_with_the_manifest_and_unset_leaves_old_signatures_whole(
    tmp_path: Path,
) -> None:
    keys = HubKeys(tmp_path)
    bundle = Bundle.create(name="m", labels=["x", "y"], input=SPEC, model=b"m", split=PLAN)
    signed = keys.sign(bundle.manifest, ttl=timedelta(days=1))
    altered = signed.model_copy(update={"split": PLAN.model_copy(update={"at": 3})})
    plain = keys.sign(make().manifest, ttl=timedelta(days=1))
    # what the hub signed before manifests had a `split`: no such key at all
    before = Manifest.model_validate_json(
        json.dumps(plain.model_dump(mode="json", exclude={"split"}))
    )

    reread = Bundle.unpack(Bundle(signed, b"m").pack()).manifest

    assert reread.split == PLAN
    TrustedKeys(keys.public()).verify(reread)
    with pytest.raises(SignatureError, match="forged"):
        TrustedKeys(keys.public()).verify(altered)
    assert b"split" not in before.signed_bytes()
    assert b'"split"' not in make().pack()
    TrustedKeys(keys.public()).verify(before)


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"at": 5}, "at: 5 blocks on the device, the net has 4"),
        ({"zero_point": None}, "scale and zero_point: give both"),
        ({"early_share": 1.5}, "less than or equal to 1"),
    ],
)
def test_a_split_plan_outside_its_net_is_refused_naming_why(
    update: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        SplitPlan.model_validate(PLAN.model_dump() | update)


def test_a_calibration_needs_one_count_per_bin() -> None:
    with pytest.raises(ValidationError, match="rows has 1 bins and accuracy 2"):
        Calibration(accuracy=[0.5, 0.9], rows=[10])


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"edges": [[0.0, 1.0], [0.0, 1.0]]}, "edges has 2 features and shares 1"),
        ({"shares": [[0.5, 0.5]]}, "feature 0: 2 edges need 3 shares"),
        ({"edges": [[1.0, 0.0]]}, "feature 0: edges must ascend"),
        ({"edges": [[0.0, float("inf")]]}, "finite number"),
        ({"shares": [[0.2, 1.5, 0.5]]}, "less than or equal to 1"),
    ],
)
def test_a_reference_that_does_not_fit_is_refused_naming_why(
    update: dict[str, Any], message: str
) -> None:
    fields = {"rows": 10, "edges": [[0.0, 1.0]], "shares": [[0.2, 0.3, 0.5]]} | update

    with pytest.raises(ValidationError, match=message):
        Reference.model_validate(fields)


def test_a_reference_of_other_features_than_the_input_is_refused() -> None:
    ref = reference(np.random.default_rng(0).normal(size=(50, 3)))

    with pytest.raises(ValidationError, match=r"reference has 3 features, input\.features 1"):
        Bundle.create(name="m", labels=["x", "y"], input=SPEC, model=b"m", reference=ref)
