"""A split net run across tiers with real processes: the device runs the head and its exit,
the hub's `/api/v1/infer` the tail on the intermediate tensors of the windows the exit is not
sure of, and the device falls back to its exit's answer when the model its policy names is
no tail or the tail does not answer in time."""

from collections.abc import Callable
from pathlib import Path

import pytest

from bundles import split_net
from edgestack.client import HubClient
from edgestack.demo import LocalFleet, wait_until
from edgestack.protocol import (
    BundleRef,
    DeployRequest,
    DesiredPatch,
    ModelView,
    OffloadPolicy,
    OffloadReport,
)

pytestmark = pytest.mark.integration

DEVICE = "device-1"


def _until(client: HubClient, what: str, holds: Callable[[OffloadReport], bool]) -> None:
    """Wait, up to 60 s, for a telemetry batch sent from now on whose offloading `holds`."""
    seen = client.telemetry(DEVICE, limit=1000)
    since = seen[-1].id if seen else 0

    def reported() -> bool:
        batches = client.telemetry(DEVICE, after_id=since, limit=1000)
        return any(b.batch.offload and b.batch.windows and holds(b.batch.offload) for b in batches)

    wait_until(reported, timeout_s=60, what=what)


def _ref(models: list[ModelView], name: str) -> BundleRef:
    model = next(m for m in models if m.name == name)
    return BundleRef(name=model.name, version=model.version, digest=model.digest)


def test_a_device_runs_the_head_the_hub_the_tail_and_the_device_falls_back(
    tmp_path: Path,
) -> None:
    # An exit sure of nothing: every window goes on to the tail.
    _, head, tail = split_net(3, name="deep", threshold=1.0)
    with LocalFleet(tmp_path, [DEVICE]) as fleet:
        fleet.start_hub()
        client = fleet.client
        client.register_model(head.pack())
        served = client.register_model(tail.pack())
        fleet.start_agent(DEVICE)
        wait_until(lambda: client.devices(), timeout_s=60, what="the device to enrol")
        client.deploy(DeployRequest(model="deep", devices=[DEVICE], force=True))
        tail_ref = _ref([served], "deep-tail")
        # The split's own threshold decides; the policy's is never read for a head.
        policy = OffloadPolicy(model=tail_ref, threshold=0.5, tier="cloud", timeout_s=10)

        client.update_desired(DEVICE, DesiredPatch(offload=policy, telemetry_interval_s=0.5))
        _until(
            client,
            "the tail on the hub to answer",
            lambda r: r.answered.get("cloud", 0) > 0 and r.uplink_bytes > 0,
        )
        # The head itself is registered but no tail: the hub refuses its tensors.
        not_a_tail = policy.model_copy(update={"model": _ref(client.models(), "deep")})
        client.update_desired(DEVICE, DesiredPatch(offload=not_a_tail))
        _until(
            client,
            "fallbacks to the exit's answer when the model named is no tail",
            lambda r: r.fallbacks > 0 and r.fallbacks == r.windows and not r.answered,
        )
        # No answer comes back within a microsecond.
        hasty = policy.model_copy(update={"timeout_s": 1e-6})
        client.update_desired(DEVICE, DesiredPatch(offload=hasty))
        _until(
            client,
            "fallbacks to the exit's answer when the tail times out",
            lambda r: r.fallbacks > 0 and r.fallbacks == r.windows and not r.answered,
        )
        reported = client.device(DEVICE).reported

    assert reported is not None and reported.status == "running"
    assert reported.bundle is not None and reported.bundle.name == "deep"
