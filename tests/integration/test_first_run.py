"""The first run as the README tells it: a hub with nothing set prints what to run next."""

import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import free_port
from edgestack.demo import wait_until

pytestmark = pytest.mark.integration


def _printed(log: Path, prefix: str) -> str:
    lines = [line.strip() for line in log.read_text().splitlines()]
    return next((line for line in lines if line.startswith(prefix)), "")


def test_a_development_hub_prints_an_agent_command_that_enrols_as_printed(
    tmp_path: Path,
) -> None:
    # Nothing of the caller's settings leaks in; only the port is chosen, so the test does not
    # clash with whatever listens on the default one.
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGESTACK_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    port = free_port()
    hub_log = tmp_path / "hub.out"
    with hub_log.open("wb") as out:
        hub = subprocess.Popen(
            ["edgestack", "hub", "--port", str(port)], cwd=tmp_path, env=env, stdout=out
        )
    agent: subprocess.Popen[bytes] | None = None
    try:
        export = wait_until(
            lambda: _printed(hub_log, "export "), timeout_s=60, what="the hub's start-up text"
        )
        command = _printed(hub_log, "edgestack agent ")
        cli_env = dict(item.split("=", 1) for item in shlex.split(export)[1:])
        with (tmp_path / "agent.log").open("wb") as out:
            # Run as printed, but not through a shell: stopping the shell would leave the
            # agent running.
            agent = subprocess.Popen(
                shlex.split(command), cwd=tmp_path, env=env, stdout=out, stderr=out
            )
        dashboard_url = _printed(hub_log, "http://")
        admin = {"Authorization": f"Bearer {cli_env['EDGESTACK_ADMIN_TOKEN']}"}
        with httpx.Client(base_url=cli_env["EDGESTACK_HUB_URL"], headers=admin) as client:
            dashboard = client.get(dashboard_url)
            enrolled = wait_until(
                lambda: client.get("/api/v1/devices").json(),
                timeout_s=60,
                what="the agent to enrol",
            )
        listing = subprocess.run(
            ["edgestack", "devices", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**env, **cli_env},
        )
    finally:
        for proc in (agent, hub):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)

    assert sorted(cli_env) == ["EDGESTACK_ADMIN_TOKEN", "EDGESTACK_HUB_URL"]
    assert f"--token {shlex.quote('dev-enrol-token')}" in command
    assert [d["device_id"] for d in enrolled] == ["device-1"]
    assert dashboard_url == f"{cli_env['EDGESTACK_HUB_URL']}/"
    assert dashboard.status_code == 200 and "<title>edgestack</title>" in dashboard.text
    assert listing.returncode == 0, listing.stdout + listing.stderr
    assert "device-1" in listing.stdout


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ("sinks:\n  - {kind: jsonl, params: {path: file/events.jsonl}}\n", "sinks[0]: path"),
        ("window: 5000000000\n", "window: windows of 5000000000 samples"),
    ],
)
def test_an_impossible_app_stops_the_agent_with_one_line_naming_the_field(
    tmp_path: Path, spec: str, field: str
) -> None:
    (tmp_path / "file").write_text("")
    app = tmp_path / "app.yaml"
    app.write_text(
        "name: press\nsources: [{kind: imu}]\nhop: 100\nextractors: [{kind: time_stats}]\n"
        + ("window: 100\n" if "window" not in spec else "")
        + spec
    )

    command = ["agent", "--app", str(app), "--token", "t", "--device-id", "press-1"]
    agent = subprocess.run(
        [sys.executable, "-m", "edgestack", *command, "--data-dir", str(tmp_path / "agent")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )

    assert agent.returncode == 2
    assert "Traceback" not in agent.stderr
    [line] = [line for line in agent.stderr.splitlines() if "cannot start" in line]
    assert f"press: {field}" in line


def test_a_hub_on_port_0_prints_the_port_it_got(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGESTACK_")}
    hub_log = tmp_path / "hub.out"
    with hub_log.open("wb") as out:
        hub = subprocess.Popen(
            [sys.executable, "-m", "edgestack", "hub", "--port", "0"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
    try:
        export = wait_until(
            lambda: _printed(hub_log, "export "), timeout_s=60, what="the hub's start-up text"
        )
        url = dict(item.split("=", 1) for item in shlex.split(export)[1:])["EDGESTACK_HUB_URL"]
        health = httpx.get(f"{url}/healthz", timeout=10)
    finally:
        hub.terminate()
        hub.wait(timeout=30)

    assert not url.endswith(":0")
    assert health.status_code == 200
    assert f"--hub {url}" in _printed(hub_log, "edgestack agent ")


def test_a_hub_whose_port_is_taken_prints_no_agent_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGESTACK_")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        hub = subprocess.run(
            [sys.executable, "-m", "edgestack", "hub", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env=env,
        )

    assert hub.returncode != 0
    assert "address already in use" in hub.stderr
    assert "edgestack agent" not in hub.stdout
