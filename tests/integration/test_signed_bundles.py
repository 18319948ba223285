"""An agent refuses a bundle whose signature does not hold and keeps its model, against a
real hub and agent; a hub refuses to serve a bundle corrupt on its disk."""

import json
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from bundles import random_bundle
from edgestack.agent.store import LocalStore
from edgestack.bundle import Bundle, BundleStore, PublicKey, digest
from edgestack.demo import LocalFleet, wait_until
from edgestack.hub.signing import HubKeys
from edgestack.hub.store import Database
from edgestack.hub.store.db import sqlite_url, utcnow
from edgestack.hub.store.tables import ModelRow
from edgestack.protocol import DeployRequest, KeyView, ModelView, ReportedState

from .test_cli import cli

_PINNED = TypeAdapter(list[PublicKey])

pytestmark = pytest.mark.integration

DEVICE = "edge-1"
MOTOR = ("normal", "imbalance", "bearing_wear")


def _plant(hub_dir: Path, bundle: Bundle, version: int) -> None:
    """Put a bundle into the hub's store and registry as registration never would: as one
    that reached the hub's disk some other way, with a digest that matches its bytes."""
    data = bundle.pack()
    BundleStore(hub_dir / "artifacts").put(data)
    db = Database(sqlite_url(hub_dir / "hub.db"))
    with db.writer() as session:
        session.add(
            ModelRow(
                name="motor",
                version=version,
                digest=digest(data),
                size_bytes=len(data),
                manifest=bundle.manifest.model_copy(update={"version": version}).model_dump(
                    mode="json"
                ),
                registered_at=utcnow(),
            )
        )
        session.commit()
    db.close()


def _reported(fleet: LocalFleet) -> ReportedState | None:
    return next((d.reported for d in fleet.client.devices() if d.device_id == DEVICE), None)


def _bundle_refusals(fleet: LocalFleet) -> list[str]:
    events = fleet.client.events(device=DEVICE, limit=100)
    return [e.event.message for e in events if e.event.kind == "bundle_refused"]


def _running_a_signed_model(fleet: LocalFleet) -> ModelView:
    """Start the agent, register a model and wait until the agent runs it as the hub signed it."""
    fleet.start_agents()
    wait_until(lambda: _reported(fleet), timeout_s=60, what="the agent to report")
    good = fleet.client.register_model(random_bundle(1, name="motor", labels=MOTOR).pack())
    fleet.client.deploy(DeployRequest(model="motor", devices=[DEVICE]))
    wait_until(
        lambda: (r := _reported(fleet)) and r.bundle and r.bundle.digest == good.digest,
        timeout_s=60,
        what="the signed bundle to run",
    )
    return good


def _refused(fleet: LocalFleet, why: str) -> ReportedState | None:
    reported = _reported(fleet)
    return reported if reported and why in (reported.error or "") else None


def test_the_agent_refuses_unsigned_forged_and_expired_bundles_and_keeps_its_model(
    tmp_path: Path,
) -> None:
    hub_dir = tmp_path / "hub"
    with LocalFleet(tmp_path, [DEVICE]) as fleet:
        fleet.start_hub()
        good = _running_a_signed_model(fleet)
        keys = HubKeys(hub_dir / "keys")
        other = random_bundle(2, name="motor", labels=MOTOR)
        signed = keys.sign(other.manifest, ttl=timedelta(days=1))
        manifests = {
            "unsigned": other.manifest,
            "forged": signed.model_copy(update={"labels": ["a", "b", "c"]}),
            "expired": keys.sign(other.manifest, ttl=timedelta(seconds=-1)),
        }
        refusals = {}
        for version, (reason, manifest) in enumerate(manifests.items(), start=2):
            _plant(hub_dir, Bundle(manifest, other.model), version)
            deployed = fleet.client.deploy(
                DeployRequest(model="motor", version=version, devices=[DEVICE])
            )
            assert deployed.bundle.version == version
            refusals[reason] = wait_until(
                partial(_refused, fleet, f"refused: signature {reason}: "),
                timeout_s=60,
                what=f"the {reason} bundle to be refused",
            )
        stored = sorted(p.name for p in (tmp_path / DEVICE / "bundles").iterdir())
        refused_events = wait_until(
            lambda: (found := _bundle_refusals(fleet)) and len(found) >= len(manifests) and found,
            timeout_s=60,
            what="an event for each refusal",
        )

    assert all(
        any(f"signature {reason}" in message for message in refused_events) for reason in manifests
    )
    for state in refusals.values():
        assert state.status == "error"
        assert state.bundle is not None and state.bundle.digest == good.digest
    assert stored == [f"{good.digest}.bundle"]


def test_a_bundle_corrupt_on_the_hubs_disk_never_reaches_the_agent(tmp_path: Path) -> None:
    with LocalFleet(tmp_path, [DEVICE]) as fleet:
        fleet.start_hub()
        good = _running_a_signed_model(fleet)
        rotten = fleet.client.register_model(random_bundle(2, name="motor", labels=MOTOR).pack())
        path = tmp_path / "hub" / "artifacts" / f"{rotten.digest}.bundle"
        path.write_bytes(path.read_bytes()[:-100])

        fleet.client.deploy(DeployRequest(model="motor", devices=[DEVICE]))
        corrupt = wait_until(
            lambda: [e for e in fleet.client.events() if e.event.kind == "store_corrupt"],
            timeout_s=60,
            what="the hub to notice its corrupt store",
        )
        last = _reported(fleet)

    assert rotten.digest in corrupt[0].event.message
    assert last is not None and last.bundle is not None
    assert last.bundle.digest == good.digest


def test_after_a_key_rotation_an_enrolled_agent_runs_bundles_the_new_key_signed(
    tmp_path: Path,
) -> None:
    with LocalFleet(tmp_path, [DEVICE]) as fleet:
        fleet.start_hub()
        fleet.start_agents()
        wait_until(lambda: _reported(fleet), timeout_s=60, what="the agent to report")

        rotated = cli(fleet, "keys", "rotate")
        listed = cli(fleet, "keys", "list", "--json")
        model = fleet.client.register_model(random_bundle(1, name="motor", labels=MOTOR).pack())
        fleet.client.deploy(DeployRequest(model="motor", devices=[DEVICE]))
        running = wait_until(
            lambda: (r := _reported(fleet)) and r.bundle and r.bundle.digest == model.digest,
            timeout_s=60,
            what="the bundle signed by the new key to run",
        )

    keys = [KeyView.model_validate(k) for k in json.loads(listed.stdout)]
    assert rotated.returncode == 0, rotated.stdout
    assert [k.active for k in keys] == [False, True]
    assert f"signing with key {keys[1].key.key_id}" in rotated.stdout
    assert model.manifest.key_id == keys[1].key.key_id
    assert running


def test_an_agent_enrolled_before_bundles_were_signed_enrols_again_to_pin_the_keys(
    tmp_path: Path,
) -> None:
    store_path = tmp_path / DEVICE / "agent.db"
    with LocalFleet(tmp_path, [DEVICE]) as fleet:
        fleet.start_hub()
        fleet.start_agents()
        wait_until(lambda: _reported(fleet), timeout_s=60, what="the agent to enrol")
        fleet.stop_agents()
        store = LocalStore(store_path)
        old_token = store.get("device_token")
        store.set("signing_keys", None)
        store.close()

        fleet.start_agents()
        pinned = wait_until(
            partial(_stored, store_path, "signing_keys"), timeout_s=60, what="keys pinned again"
        )
        new_token = _stored(store_path, "device_token")

    assert new_token != old_token
    assert [k.key_id for k in _PINNED.validate_json(pinned)] == [
        k.key_id for k in HubKeys(tmp_path / "hub" / "keys").public()
    ]


def _stored(path: Path, key: str) -> str | None:
    store = LocalStore(path)
    try:
        return store.get(key)
    finally:
        store.close()
