import random
import time
from pathlib import Path

import pytest

from bundles import random_bundle
from edgestack.agent.download import KEEP_BUNDLES
from edgestack.demo import LocalFleet, wait_until
from edgestack.protocol import BundleRef, DeployRequest, DesiredPatch, RuleParams

pytestmark = pytest.mark.integration

DEVICE = "edge-1"
KILLS = 20


def test_an_agent_killed_during_download_install_or_swap_restarts_on_a_valid_model(
    tmp_path: Path,
) -> None:
    rng = random.Random(7)
    with LocalFleet(tmp_path, [DEVICE]) as fleet:
        fleet.start_hub()
        # As the hub signed them: the digests devices are sent.
        registered = [
            fleet.client.register_model(random_bundle(seed, name="motor").pack())
            for seed in (1, 2, 3)
        ]
        refs = [BundleRef(name=m.name, version=m.version, digest=m.digest) for m in registered]
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
