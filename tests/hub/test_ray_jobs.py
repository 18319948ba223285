"""Where the hub runs its jobs: the `jobs` setting's addresses, and the errors of a Ray
cluster that cannot take a job."""

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from conftest import free_port
from edgestack.cli import app
from edgestack.hub import HubSettings
from edgestack.hub import worker as worker_module
from edgestack.hub.ray_jobs import RayCluster, RayRun, RayUnavailable, parse_jobs, refuses
from edgestack.hub.worker import Worker


@pytest.mark.parametrize(
    ("value", "cluster"),
    [
        ("local", None),
        ("ray://10.0.0.5:7000", RayCluster("10.0.0.5", 7000)),
        ("ray://head.example", RayCluster("head.example", 10001)),
        ("ray://[::1]:7000", RayCluster("::1", 7000)),
    ],
)
def test_local_and_ray_addresses_are_understood(value: str, cluster: RayCluster | None) -> None:
    parsed = parse_jobs(value)

    assert parsed == cluster
    assert parsed is None or parse_jobs(parsed.address) == parsed


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Local",
        "ray:/head:7000",
        "http://head:7000",
        "ray://",
        "ray://head:port",
        "ray://head:70000",
        "ray://head:0",
        "ray://head:7000/jobs",
        "ray://head:7000?x=1",
        "ray://user@head:7000",
    ],
)
def test_anything_else_is_refused_with_the_fix(value: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_jobs(value)

    assert f"'{value}'" in str(refused.value)
    assert "--jobs" in str(refused.value) and "ray://HOST:PORT" in str(refused.value)


def test_the_hub_runs_jobs_locally_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGESTACK_HUB_JOBS", raising=False)
    monkeypatch.delenv("EDGESTACK_HUB_JOBS_HUB_URL", raising=False)
    default = HubSettings()
    monkeypatch.setenv("EDGESTACK_HUB_JOBS", "ray://head:7000")
    from_env = HubSettings()
    monkeypatch.setenv("EDGESTACK_HUB_JOBS", "ray:/head")

    with pytest.raises(ValidationError) as refused:
        HubSettings()

    assert (default.jobs, default.jobs_hub_url) == ("local", None)
    assert from_env.jobs == "ray://head:7000"
    [error] = refused.value.errors()
    assert error["loc"] == ("jobs",) and "ray://HOST:PORT" in error["msg"]


def test_the_url_ray_tasks_reach_the_hub_at_must_be_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESTACK_HUB_JOBS_HUB_URL", "https://hub.example:8400")
    given = HubSettings()
    monkeypatch.setenv("EDGESTACK_HUB_JOBS_HUB_URL", "hub.example:8400")

    with pytest.raises(ValidationError) as refused:
        HubSettings()

    assert given.jobs_hub_url == "https://hub.example:8400"
    [error] = refused.value.errors()
    assert error["loc"] == ("jobs_hub_url",)
    assert "'hub.example:8400' is no URL" in error["msg"] and "http://" in error["msg"]


def test_a_hub_and_its_worker_refuse_an_address_they_cannot_use(tmp_path: Path) -> None:
    hub = CliRunner().invoke(app, ["hub", "--data-dir", str(tmp_path), "--jobs", "ray:/head"])

    with pytest.raises(ValueError, match="ray://HOST:PORT"):
        Worker("http://127.0.0.1:8400", "token", jobs="ray:/head")
    assert hub.exit_code == 2
    assert "jobs: 'ray:/head' is neither `local` nor a Ray address" in hub.output
    assert not any(tmp_path.iterdir()), "the hub started"


def test_a_ray_task_that_cannot_reach_the_hub_says_so_before_it_runs_the_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "where", lambda: "Ray node n1, worker pid 7")
    url = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(Exception, match="cannot reach the hub") as refused:
        worker_module._run_on_ray(url, "token", 1, {"kind": "train", "dataset": "motors"})

    assert str(refused.value) == (
        f"Ray node n1, worker pid 7 cannot reach the hub at {url}; set "
        "EDGESTACK_HUB_JOBS_HUB_URL to the hub's URL as the Ray cluster's nodes reach it"
    )


def test_a_cluster_nobody_listens_on_is_unavailable_with_its_address_and_the_fix() -> None:
    cluster = RayCluster("127.0.0.1", free_port())

    with pytest.raises(RayUnavailable) as refused:
        RayRun.start(cluster, print, "never runs")

    message = str(refused.value)
    assert cluster.address in message
    assert f"--ray-client-server-port {cluster.port}" in message and "--jobs local" in message


def test_a_federated_job_is_the_one_kind_a_ray_cluster_refuses_naming_it_and_the_fix() -> None:
    cluster = RayCluster("head.example", 7000)

    why = refuses(cluster, "federated")

    assert why is not None and "ray://head.example:7000" in why and "--jobs local" in why
    assert [refuses(cluster, kind) for kind in ("train", "optimise", "evaluate")] == [None] * 3
