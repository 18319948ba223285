import random
import time
from pathlib import Path

import numpy as np
import pytest

from edgestack.agent.download import KEEP_BUNDLES
from edgestack.bundle import Bundle
from edgestack.demo import LocalFleet, wait_until
from edgestack.learning import train_classifier
from edgestack.processing import vibration_spec
from edgestack.protocol import BundleRef, DeployRequest, DesiredPatch, RuleParams

pytestmark = pytest.mark.integration

DEVICE = "edge-1"
KILLS = 12


def _bundle(version: int) -> bytes:
    spec = vibration_spec()
    rows = np.random.default_rng(version).normal(size=(60, len(spec.features)))
    trained = train_classifier(rows.astype(np.float32), ["normal", "worn"] * 30, seed=version)
    return Bundle.create(
        name="motor", version=version, labels=trained.labels, input=spec, model=trained.onnx
    ).pack()


def test_an_agent_killed_during_download_install_or_swap_restarts_on_a_valid_model(
    tmp_path: Path,
) -> None:
    bundles = [_bundle(1), _bundle(2), _bundle(3)]
    rng = random.Random(7)
    with LocalFleet(tmp_path, [DEVICE]) as fleet:
        fleet.start_hub()
        # The hub signs what it registers: devices run the signed bundles, of other digests.
        models = [fleet.client.register_model(data) for data in bundles]
        refs = [BundleRef(name=m.name, version=m.version, digest=m.digest) for m in models]
        fleet.start_agents()
        wait_until(lambda: fleet.client.devices(), timeout_s=60, what="the agent to enrol")
        ran = []
        for point in range(KILLS):
            wanted = refs[point % len(refs)]
            fleet.client.deploy(
                DeployRequest(model="motor", version=wanted.version, devices=[DEVICE], force=True)
            )
            # The kill point: spread from before the twin answers to after the swap.
            time.sleep(rng.uniform(0, 1.5))
            fleet.kill_agent(DEVICE)
            fleet.start_agent(DEVICE)
            # A change the restarted agent must apply and report: the answer is its own.
            desired = fleet.client.update_desired(
                DEVICE, DesiredPatch(rules=RuleParams(trigger_windows=point + 1))
            )

            def converged(version: int = desired.version) -> BundleRef | None:
                reported = fleet.client.device(DEVICE).reported
                if reported is None or reported.desired_version != version:
                    return None
                assert reported.status == "running", reported.error
                return reported.bundle

            ran.append(wait_until(converged, timeout_s=60, what=f"kill {point} to recover"))
            assert ran[-1] == wanted
        fleet.stop_agents()

    kept = sorted(p.name for p in (tmp_path / DEVICE / "bundles").iterdir())
    assert len(kept) <= KEEP_BUNDLES and not [k for k in kept if k.endswith(".part")], kept
