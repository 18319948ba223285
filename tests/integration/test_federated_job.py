"""A federated job against a real hub process and its worker: `edgestack fl keep` and
`fl start`, the aggregator the job starts, and the library's own SuperNodes standing in for
the devices' clients. One federation for the whole module: each run takes a minute."""

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from edgestack.bundle import Bundle
from edgestack.demo import LocalFleet, wait_until
from edgestack.federated import Node, save_local_windows, start_client
from edgestack.predictor import OnnxPredictor
from edgestack.processing import EXTRACTORS, vibration_spec
from edgestack.protocol import (
    Collection,
    DeployRequest,
    DeviceView,
    EventView,
    FederatedTask,
    Feeds,
    JobView,
    ModelView,
    RolloutView,
)

from .test_cli import bare_env, cli
from .test_cli_deploy import _enrol_a_pi

pytestmark = pytest.mark.integration

SPEC = vibration_spec(rate_hz=1000.0, window=250, hop=250)
LABELS = ["normal", "worn"]
DEVICES = ["edge-1", "edge-2"]
ROUNDS = 2


@dataclass(frozen=True)
class Run:
    """What the hub held once the job ended, and the CLI's answers along the way."""

    job: JobView
    kept: list[DeviceView]
    during: list[DeviceView]
    after: list[DeviceView]
    events: list[EventView]
    model: ModelView
    bundle: Bundle
    rollouts: list[RolloutView]
    followed: tuple[int, str]
    x_test: np.ndarray
    y_test: np.ndarray


def _windows(rng: np.random.Generator, rows: int, share_worn: float) -> tuple[np.ndarray, ...]:
    """Rows of the spec's width: worn windows sit apart from normal ones."""
    worn = rng.random(rows) < share_worn
    x = rng.normal(0.0, 1.0, (rows, len(SPEC.features))) + 2.5 * worn[:, None]
    return x.astype(np.float32), np.where(worn, "worn", "normal")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("federated")
    rng = np.random.default_rng(7)
    feeds_bundle = Bundle.create(name="motor", labels=LABELS, input=SPEC, model=b"onnx-model")
    clients: list[Node] = []
    with LocalFleet(tmp, []) as fleet:
        fleet.start_hub()
        feeds = Feeds(sensors=SPEC.sensors, rate_hz=SPEC.rate_hz, extractors=EXTRACTORS.names())
        for device_id in DEVICES:
            _enrol_a_pi(fleet, device_id, feeds)
        fleet.client.register_model(feeds_bundle.pack())
        # A rollout shadows the model a device runs: the devices run one of the same spec.
        fleet.client.deploy(DeployRequest(model="motor", to=["all"]))

        keep = cli(fleet, "fl", "keep", *DEVICES, "--dataset", "motors", "--label", "worn")
        assert keep.returncode == 0, keep.stdout
        kept = [fleet.client.device(d) for d in DEVICES]
        # Followed to its end, as an operator runs it: the rounds print as they end.
        following = subprocess.Popen(
            [
                sys.executable, "-m", "edgestack", "fl", "start", "--dataset", "motors",
                "--to", "all", "--rounds", str(ROUNDS), "--min-clients", "2",
                "--round-timeout", "60", "--waves", "100%", "--hub", fleet.hub_url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=bare_env(EDGESTACK_ADMIN_TOKEN=fleet.admin_token),
        )  # fmt: skip

        def pointed() -> list[DeviceView] | None:
            views = [fleet.client.device(d) for d in DEVICES]
            tasks = [v.desired.federated for v in views]
            return views if all(t is not None and t.aggregator for t in tasks) else None

        def ended() -> JobView | None:
            (job,) = fleet.client.jobs()
            return job if job.state in ("succeeded", "failed") else None

        try:
            during = wait_until(
                pointed, timeout_s=120, what="the job to point the devices at its aggregator"
            )
            for index, device in enumerate(during):
                x, labels = _windows(rng, 80, share_worn=0.2 if index == 0 else 0.8)
                windows = save_local_windows(tmp / f"{device.device_id}.npz", x, labels, SPEC)
                task = device.desired.federated
                assert task is not None and task.aggregator is not None
                clients.append(start_client(task.aggregator, windows, tmp, name=device.device_id))
            job = wait_until(ended, timeout_s=600, what="the job to end", every_s=0.5)
            followed, _ = following.communicate(timeout=60)
        finally:
            following.kill()
            for client in clients:
                client.stop()
        assert job.result is not None, (job.error, fleet.client.job_log(job.id))
        model = next(m for m in fleet.client.models() if m.name == "fl-motors")
        x_test, labels_test = _windows(rng, 200, share_worn=0.5)
        yield Run(
            job=job,
            kept=kept,
            during=during,
            after=[fleet.client.device(d) for d in DEVICES],
            events=fleet.client.events(),
            model=model,
            bundle=Bundle.unpack(fleet.client.bundle(model.digest)),
            rollouts=fleet.client.rollouts(),
            followed=(following.returncode, " ".join(followed.split())),
            x_test=x_test,
            y_test=np.array([LABELS.index(label) for label in labels_test]),
        )


def test_the_job_registers_the_federated_model_with_its_lineage(run: Run) -> None:
    lineage = run.bundle.manifest.lineage

    assert run.job.state == "succeeded", run.job.error
    assert run.job.result is not None
    assert run.job.result["model"]["name"] == "fl-motors"
    assert (run.job.result["rounds"], run.job.result["participants"]) == (ROUNDS, [2, 2])
    assert (run.model.version, run.bundle.manifest.labels) == (1, LABELS)
    assert run.bundle.manifest.input == SPEC
    assert lineage is not None and lineage.trainer == "federated:mlp"
    assert lineage.dataset == "motors"
    assert lineage.params["rounds"] == ROUNDS and lineage.params["participants"] == [2, 2]
    assert lineage.params["strategy"] == "fedavg" and lineage.params["secagg"] is False


def test_the_registered_bundle_predicts_as_a_device_loads_it(run: Run) -> None:
    predictor = OnnxPredictor(run.bundle.model, run.bundle.manifest.labels)

    predicted, _ = predictor.predict(run.x_test)

    assert predictor.n_features == len(SPEC.features)
    assert float((predicted == run.y_test).mean()) > 0.8


def test_each_round_is_a_hub_event_and_the_progress_of_the_job(run: Run) -> None:
    mine = f"job {run.job.id} (federated fedavg mlp on motors, {ROUNDS} rounds)"
    rounds = [e.event.message for e in run.events if e.event.kind == "job_progress"]

    assert [m.removeprefix(mine + ": ")[:20] for m in rounds] == [
        "round 1/2: 2 devices",
        "round 2/2: 2 devices",
    ]
    assert all(m.startswith(mine) for m in rounds)
    assert run.job.progress == 1.0
    code, said = run.followed
    assert code == 0, said
    assert said.startswith(f"job {run.job.id} queued: fedavg mlp on motors, {ROUNDS} rounds")
    assert "round 1/2: 2 devices" in said and "round 2/2: 2 devices" in said
    assert said.endswith(f"job {run.job.id} succeeded")


def test_the_devices_train_for_the_job_keeping_what_they_kept_and_are_released(
    run: Run,
) -> None:
    keep = Collection(label="worn", dataset="motors")
    aggregators = {v.desired.federated.aggregator for v in run.during if v.desired.federated}

    assert [v.desired.federated for v in run.kept] == [
        FederatedTask(keep=keep, dataset="motors")
    ] * 2
    for view in run.during:
        task = view.desired.federated
        assert task is not None and task.job == run.job.id and task.keep == keep
        assert task.aggregator is not None and task.aggregator.startswith("127.0.0.1:")
    assert len(aggregators) == 1
    assert [v.desired.federated for v in run.after] == [
        FederatedTask(keep=keep, dataset="motors")
    ] * 2


def test_the_model_is_rolled_out_when_asked(run: Run) -> None:
    (rollout,) = run.rollouts

    assert (rollout.candidate.name, rollout.candidate.version) == ("fl-motors", 1)
    assert run.job.result is not None and run.job.result["rollout"] == rollout.id
    assert sorted(rollout.previous) == DEVICES
