"""Where the hub runs its jobs: the `jobs` setting's addresses, and the errors of a Ray
cluster that cannot take a job."""

import pytest
from pydantic import ValidationError

from conftest import free_port
from edgestack.hub import HubSettings
from edgestack.hub.ray_jobs import RayCluster, RayRun, RayUnavailable, parse_jobs
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
    default = HubSettings()
    monkeypatch.setenv("EDGESTACK_HUB_JOBS", "ray://head:7000")
    from_env = HubSettings()
    monkeypatch.setenv("EDGESTACK_HUB_JOBS", "ray:/head")

    with pytest.raises(ValidationError) as refused:
        HubSettings()

    assert default.jobs == "local"
    assert from_env.jobs == "ray://head:7000"
    [error] = refused.value.errors()
    assert error["loc"] == ("jobs",) and "ray://HOST:PORT" in error["msg"]


def test_a_worker_refuses_an_address_it_cannot_use() -> None:
    with pytest.raises(ValueError, match="ray://HOST:PORT"):
        Worker("http://127.0.0.1:8400", "token", jobs="ray:/head")


def test_a_cluster_nobody_listens_on_is_unavailable_with_its_address_and_the_fix() -> None:
    cluster = RayCluster("127.0.0.1", free_port())

    with pytest.raises(RayUnavailable) as refused:
        RayRun.start(cluster, print, "never runs")

    message = str(refused.value)
    assert cluster.address in message
    assert f"--ray-client-server-port {cluster.port}" in message and "--jobs local" in message
