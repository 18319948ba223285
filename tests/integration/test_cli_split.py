"""`edgestack split` and the split row of `edgestack tradeoff` against a real hub process."""

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from bundles import SPLIT_SPEC, random_bundle
from edgestack.bundle import Bundle, Lineage
from edgestack.demo import LocalFleet
from edgestack.protocol import DataSample, SampleImport

from .test_cli import bare_env, cli
from .test_event_stream import _enrol

pytestmark = pytest.mark.integration


def upload_windows(fleet: LocalFleet, dataset: str, count: int = 60) -> None:
    """Raw windows of `SPLIT_SPEC`, each of two states humming at its own tone under noise,
    as one frozen version."""
    rng = np.random.default_rng(5)
    labels = np.arange(count) % 2
    t = np.arange(SPLIT_SPEC.window) / SPLIT_SPEC.rate_hz
    tone = np.array([500.0, 2000.0])[labels][:, None, None]
    shape = (count, len(SPLIT_SPEC.sensors), SPLIT_SPEC.window)
    windows = np.sin(2 * np.pi * tone * t) + rng.normal(0, 0.3, shape)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    samples = [
        DataSample(at=start + timedelta(seconds=i), label=["hum", "whine"][k], features=w)
        for i, (w, k) in enumerate(zip(windows.reshape(count, -1).tolist(), labels, strict=True))
    ]
    fleet.client.import_samples(
        dataset, SampleImport(batch_id=uuid.uuid4(), spec=SPLIT_SPEC, samples=samples)
    )
    fleet.client.freeze(dataset)


def _cli(fleet: LocalFleet, *args: str) -> subprocess.CompletedProcess[str]:
    """A command that refits and exports a net: longer than the listings' minute on a busy
    machine."""
    return subprocess.run(
        [sys.executable, "-m", "edgestack", *args, "--hub", fleet.hub_url],
        capture_output=True,
        text=True,
        timeout=300,
        env=bare_env(EDGESTACK_ADMIN_TOKEN=fleet.admin_token),
    )


def test_a_multi_exit_net_is_split_registered_as_head_and_tail_and_traded_off(
    tmp_path: Path,
) -> None:
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        _enrol(fleet, "edge-1")
        upload_windows(fleet, "hum")
        trained = _cli(fleet, "train", "hum", "--model", "cnn1d_exits", "--params", '{"epochs": 3}')
        # Every window leaves at the exit and the server is a second away: the cut is right
        # after the exit, whatever the blocks' timings.
        split = _cli(
            fleet, "split", "hum", "--profile", "mcu", "--rtt", "1000", "--exit-share", "1",
            "--json",
        )  # fmt: skip
        again = cli(fleet, "split", "hum-tail", "--profile", "mcu")
        flat = random_bundle(1, name="flat", spec=SPLIT_SPEC)
        lineage = Lineage(dataset="hum", dataset_version=1, trainer="logistic_regression")
        fleet.client.register_model(
            Bundle(flat.manifest.model_copy(update={"lineage": lineage}), flat.model).pack()
        )
        no_exits = cli(fleet, "split", "flat", "--profile", "mcu")
        no_profile = cli(fleet, "split", "hum@1", "--profile", "toaster")
        traded = _cli(
            fleet, "tradeoff", "hum@1", "--device", "edge-1", "--cloud", "hum@1", "--split",
            "hum@2", "--fractions", "0.5", "--json",
        )  # fmt: skip
        not_a_head = cli(
            fleet, "tradeoff", "hum@1", "--device", "edge-1", "--cloud", "hum@1", "--split", "hum@1"
        )
        models = {(m.name, m.version): m for m in fleet.client.models()}

    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert split.returncode == 0, split.stdout + split.stderr
    summary = json.loads(split.stdout)
    plan = summary["plan"]
    assert (plan["at"], plan["blocks"], plan["point"]) == (2, 4, "conv2")
    assert plan["early_share"] == 1.0 and plan["offload_bytes"] > 0
    assert (summary["head"]["name"], summary["head"]["version"]) == ("hum", 2)
    assert (summary["tail"]["name"], summary["tail"]["version"]) == ("hum-tail", 1)
    head, tail = models[("hum", 2)].manifest, models[("hum-tail", 1)].manifest
    assert head.split == tail.split and head.split is not None and head.split.scale is None
    assert head.lineage is not None and head.lineage.parent == models[("hum", 1)].digest
    assert again.returncode == 2
    assert "hum-tail v1 is one side of a split net already" in again.stdout
    assert no_exits.returncode == 2
    assert "flat v1 was trained with logistic_regression, no multi-exit net" in no_exits.stdout
    assert no_profile.returncode == 2
    assert "--profile: 'toaster' is no device profile" in no_profile.stdout
    assert traded.returncode == 0, traded.stdout + traded.stderr
    choices = {c["policy"]: c for c in json.loads(traded.stdout)["choices"]}
    row = choices["split after conv2"]
    assert 0 <= row["offload_fraction"] <= 1 and row["latency_ms"] > 0
    assert row["uplink_bytes"] == pytest.approx(row["offload_fraction"] * plan["offload_bytes"])
    assert not_a_head.returncode == 2
    assert "--split: hum v1 is no split net's head" in not_a_head.stdout
