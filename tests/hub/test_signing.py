import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from threading import Barrier

import httpx
import pytest

from edgestack.bundle import Bundle, SignatureError, TrustedKeys
from edgestack.hub.context import HubContext
from edgestack.hub.signing import HubKeys
from edgestack.protocol import EnrolResponse, KeyView

from .factories import ADMIN, ENROL_TOKEN, HARDWARE, SPEC

pytestmark = pytest.mark.anyio

DAY = timedelta(days=1)


def _bundle() -> Bundle:
    return Bundle.create(name="m", labels=["a", "b"], input=SPEC, model=b"model")


def test_the_first_key_is_made_once_and_readable_by_the_hub_only(tmp_path: Path) -> None:
    first = HubKeys(tmp_path / "keys").public()

    again = HubKeys(tmp_path / "keys").public()

    assert again == first and len(first) == 1
    assert stat.S_IMODE((tmp_path / "keys" / f"{first[0].key_id}.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700


def test_hubs_starting_together_on_one_directory_make_one_first_key(tmp_path: Path) -> None:
    starting = Barrier(6)

    def start() -> list[str]:
        starting.wait()
        return [key.key_id for key in HubKeys(tmp_path / "keys").public()]

    with ThreadPoolExecutor(6) as pool:
        seen = list(pool.map(lambda _: start(), range(6)))

    assert len(seen[0]) == 1 and all(keys == seen[0] for keys in seen)


def test_replicas_on_one_directory_sign_with_and_keep_each_others_rotations(
    tmp_path: Path,
) -> None:
    a, b = HubKeys(tmp_path), HubKeys(tmp_path)

    by_a = a.rotate()
    signed_by_b = b.sign(_bundle().manifest, ttl=DAY)
    by_b = b.rotate()

    assert signed_by_b.key_id == by_a.key_id
    assert [key.key_id for key in a.public()][1:] == [by_a.key_id, by_b.key_id]
    assert TrustedKeys(a.public()[:1]).verify(b.sign(_bundle().manifest, ttl=DAY)) is True


def test_a_signed_manifest_verifies_with_the_pinned_key_and_expires(tmp_path: Path) -> None:
    keys = HubKeys(tmp_path)
    signed = keys.sign(_bundle().manifest, ttl=DAY)
    trusted = TrustedKeys(keys.public())

    learnt = trusted.verify(signed)

    assert learnt is False
    assert signed.expires_at is not None
    with pytest.raises(SignatureError, match="signature expired") as expired:
        trusted.verify(signed, now=signed.expires_at + timedelta(seconds=1))
    assert expired.value.reason == "expired"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"signature": None}, "unsigned"),
        ({"labels": ["a", "evil"]}, "forged"),
        ({"expires_at": datetime(2999, 1, 1, tzinfo=UTC)}, "forged"),
        ({"key_id": "0" * 16}, "unknown_key"),
    ],
)
def test_an_unsigned_altered_or_unknown_signature_is_refused_naming_why(
    tmp_path: Path, change: dict[str, object], reason: str
) -> None:
    keys = HubKeys(tmp_path)
    tampered = keys.sign(_bundle().manifest, ttl=DAY).model_copy(update=change)

    with pytest.raises(SignatureError) as refused:
        TrustedKeys(keys.public()).verify(tampered)

    assert refused.value.reason == reason
    assert str(refused.value).startswith(f"signature {reason}: ")


def test_another_hubs_key_is_unknown(tmp_path: Path) -> None:
    ours, theirs = HubKeys(tmp_path / "ours"), HubKeys(tmp_path / "theirs")

    with pytest.raises(SignatureError) as refused:
        TrustedKeys(ours.public()).verify(theirs.sign(_bundle().manifest, ttl=DAY))

    assert refused.value.reason == "unknown_key"


def test_a_device_that_pinned_the_old_key_learns_rotated_keys_from_the_chain(
    tmp_path: Path,
) -> None:
    keys = HubKeys(tmp_path)
    trusted = TrustedKeys(keys.public())
    keys.rotate()
    keys.rotate()

    signed = keys.sign(_bundle().manifest, ttl=DAY)
    learnt = trusted.verify(signed)

    assert learnt is True
    assert [k.key_id for k in trusted.keys] == [k.key_id for k in keys.public()]
    assert HubKeys(tmp_path).sign(_bundle().manifest, ttl=DAY).key_id == signed.key_id


def test_a_chain_link_not_endorsed_by_a_trusted_key_teaches_nothing(tmp_path: Path) -> None:
    keys, stranger = HubKeys(tmp_path / "ours"), HubKeys(tmp_path / "theirs")
    trusted = TrustedKeys(keys.public())
    stranger.rotate()
    signed = stranger.sign(_bundle().manifest, ttl=DAY)

    with pytest.raises(SignatureError) as refused:
        trusted.verify(signed)

    assert refused.value.reason == "unknown_key"
    assert trusted.keys == keys.public()


async def test_enrolment_hands_out_the_keys_and_rotation_keeps_the_old_one(
    client: httpx.AsyncClient, hub: HubContext
) -> None:
    body = {"device_id": "edge-1", "enrol_token": ENROL_TOKEN, "hardware": HARDWARE.model_dump()}
    before = EnrolResponse.model_validate_json(
        (await client.post("/api/v1/enrol", json=body)).content
    )

    rotated = await client.post("/api/v1/keys/rotate", headers=ADMIN)
    listed = await client.get("/api/v1/keys", headers=ADMIN)
    again = {**body, "device_token": before.device_token}
    after = EnrolResponse.model_validate_json(
        (await client.post("/api/v1/enrol", json=again)).content
    )

    views = [KeyView.model_validate(v) for v in listed.json()]
    assert rotated.json() == listed.json()
    assert [v.active for v in views] == [False, True]
    assert [v.key for v in views] == after.signing_keys == hub.keys.public()
    assert before.signing_keys == after.signing_keys[:1]
    assert views[1].key.endorsed_by == views[0].key.key_id


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/api/v1/keys"), ("POST", "/api/v1/keys/rotate")]
)
async def test_keys_need_the_admin_token(client: httpx.AsyncClient, method: str, path: str) -> None:
    response = await client.request(method, path)

    assert response.status_code == 401
