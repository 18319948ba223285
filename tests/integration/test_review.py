"""Windows for review from a real agent: asked, sent least confident first, labelled into a
dataset, all through the command line."""

import json
from pathlib import Path

import pytest

from bundles import random_bundle
from edgestack.demo import LocalFleet, wait_until
from edgestack.protocol import DeployRequest

from .test_cli import cli

pytestmark = pytest.mark.integration


def test_a_device_sends_the_windows_asked_for_and_labelled_ones_join_a_dataset(
    tmp_path: Path,
) -> None:
    with LocalFleet(tmp_path, ["edge-1"]) as fleet:
        fleet.start_hub()
        fleet.start_agents()
        fleet.client.register_model(random_bundle(3, name="motor").pack())
        wait_until(
            lambda: [d for d in fleet.client.devices() if d.reported and d.reported.feeds],
            timeout_s=60,
            what="the agent to report what it feeds",
        )
        fleet.client.deploy(DeployRequest(model="motor", devices=["edge-1"]))

        asked = cli(fleet, "windows", "ask", "edge-1", "--count", "6")
        sent = wait_until(
            lambda: fleet.client.windows(device="edge-1"),
            timeout_s=60,
            what="the windows to arrive",
        )
        ids = [str(w.id) for w in sent[:4]]
        labelled = cli(fleet, "windows", "label", *ids, "--label", "worn", "--dataset", "review")
        bad = cli(fleet, "windows", "label", *ids, "--label", "worn\tout", "--dataset", "review")
        unlabelled = cli(fleet, "windows", "list", "--unlabelled", "--json")
        dataset = fleet.client.samples()

    assert asked.returncode == 0 and "asked edge-1 for 6 windows (request 1)" in asked.stdout
    assert len(sent) == 6 and {w.bundle_digest for w in sent} == {sent[0].bundle_digest}
    confidences = [w.confidence for w in sent]
    assert confidences == sorted(confidences)
    assert labelled.returncode == 0, labelled.stdout
    assert "labelled 4 windows 'worn': 4 new samples in review" in labelled.stdout
    assert bad.returncode == 2 and "--label" in bad.stdout and "control character" in bad.stdout
    assert [w["id"] for w in json.loads(unlabelled.stdout)] == [w.id for w in sent[4:]]
    assert sorted(s.features for s in dataset.samples) == sorted(w.features for w in sent[:4])
    assert {s.label for s in dataset.samples} == {"worn"}
