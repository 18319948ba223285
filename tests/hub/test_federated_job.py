"""The federated job's hold on devices, against an in-process hub: refused before any device
is touched when it cannot run, and released when the job stops under way. A run to its end,
with clients, is in tests/integration/test_federated_job.py."""

import socket
from pathlib import Path

import httpx
import pytest

from edgestack.client import HubClient
from edgestack.learning.federated_job import federated_devices, run_federated
from edgestack.learning.workflow import WorkflowError
from edgestack.protocol import Collection, DesiredPatch, FederatedRequest, FederatedTask, TagsPatch

from .factories import ENROL_TOKEN, HARDWARE

KEEP = FederatedTask(keep=Collection(label="worn", dataset="motors"), dataset="motors")


def _enrol(transport: httpx.BaseTransport, *device_ids: str) -> None:
    with httpx.Client(transport=transport, base_url="http://hub") as device:
        for device_id in device_ids:
            body = {
                "device_id": device_id,
                "enrol_token": ENROL_TOKEN,
                "hardware": HARDWARE.model_dump(),
            }
            assert device.post("/api/v1/enrol", json=body).status_code == 200


def test_targets_resolve_to_enrolled_devices_and_one_matching_none_is_named(
    sdk: HubClient, app_transport: httpx.BaseTransport
) -> None:
    _enrol(app_transport, "edge-1", "edge-2", "edge-3")
    sdk.tag("edge-2", TagsPatch(tags={"site": "plant-4"}))

    chosen = federated_devices(sdk, ["tag:site=plant-4", "edge-3", "edge-3"])
    every = federated_devices(sdk, ["all"])
    with pytest.raises(WorkflowError) as unknown:
        federated_devices(sdk, ["edge-9"])
    with pytest.raises(WorkflowError) as unmatched:
        federated_devices(sdk, ["tag:site=plant-9"])

    assert chosen == ["edge-2", "edge-3"] and every == ["edge-1", "edge-2", "edge-3"]
    assert unknown.value.field == "to" and "no enrolled device matches edge-9" in str(unknown.value)
    assert "tag:site=plant-9" in str(unmatched.value)


def test_a_job_needing_more_devices_than_it_targets_is_refused_touching_none(
    sdk: HubClient, app_transport: httpx.BaseTransport, tmp_path: Path
) -> None:
    _enrol(app_transport, "edge-1")
    request = FederatedRequest(dataset="motors", to=["all"], min_clients=2)

    with pytest.raises(WorkflowError) as refused:
        run_federated(sdk, request, 1, tmp_path)

    assert refused.value.field == "min_clients"
    assert "lower --min-clients or target more devices" in str(refused.value)
    assert sdk.device("edge-1").desired.federated is None


def test_a_job_stopped_under_way_gives_the_devices_back_what_they_had(
    sdk: HubClient, app_transport: httpx.BaseTransport, tmp_path: Path
) -> None:
    _enrol(app_transport, "edge-1", "edge-2")
    sdk.update_desired("edge-1", DesiredPatch(federated=KEEP))
    request = FederatedRequest(dataset="motors", to=["all"], min_clients=2)
    seen = []

    def cancelled(what: str, done: int, total: int) -> None:
        # As the worker's progress does once the hub refuses a cancelled job's report.
        seen.extend(sdk.device(d).desired.federated for d in ("edge-1", "edge-2"))
        raise SystemExit(0)

    with pytest.raises(SystemExit):
        run_federated(sdk, request, 7, tmp_path, progress=cancelled)

    during = [task for task in seen if task is not None]
    assert len(during) == 2 and {t.job for t in during} == {7}
    assert during[0].keep == KEEP.keep and during[1].keep is None
    assert during[0].aggregator == during[1].aggregator is not None
    assert sdk.device("edge-1").desired.federated == KEEP
    assert sdk.device("edge-2").desired.federated is None
    # The aggregator stopped with the job.
    host, port = str(during[0].aggregator).rsplit(":", 1)
    with socket.socket() as probe:
        assert probe.connect_ex((host, int(port))) != 0
