import asyncio
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgestack.agent import Agent, AgentSettings, federated
from edgestack.agent.federated import FederatedClient, KeptWindows, kill_left_over
from edgestack.demo import wait_until
from edgestack.processing import vibration_spec, with_extractors

SPEC = vibration_spec()
WIDTH = len(SPEC.features)


def _rows(n: int, start: float = 0.0) -> np.ndarray:
    return (start + np.arange(n * WIDTH, dtype=np.float32)).reshape(n, WIDTH)


def test_kept_windows_hold_the_newest_rows_write_only_what_was_added_and_survive_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(federated, "MAX_ROWS", 5)
    kept = KeptWindows(tmp_path, "motor data/1")
    kept.add(_rows(3), "normal", SPEC)
    kept.add(_rows(4, start=1000), "imbalance", SPEC)

    first = kept.write()
    again = kept.write()
    restarted = KeptWindows(tmp_path, "motor data/1")
    with np.load(restarted.windows) as client:
        for_client = client["x"], client["labels"].tolist(), str(client["spec"])

    assert (first, again) == (True, False)
    assert len(restarted) == 5
    with np.load(restarted.path) as held:
        assert held["labels"].tolist() == ["normal"] + ["imbalance"] * 4
        np.testing.assert_array_equal(held["x"], np.concatenate([_rows(3), _rows(4, 1000)])[-5:])
    # The client's file holds the same rows, named, with the spec they were computed by.
    np.testing.assert_array_equal(for_client[0], np.concatenate([_rows(3), _rows(4, 1000)])[-5:])
    assert for_client[1:] == (["normal"] + ["imbalance"] * 4, SPEC.model_dump_json())
    assert restarted.path.parent == tmp_path and "/" not in restarted.path.name


def test_rows_a_failed_write_did_not_put_on_disk_are_written_by_the_next(tmp_path: Path) -> None:
    blocked = tmp_path / "federated"
    blocked.write_text("a file where the folder goes")
    kept = KeptWindows(blocked, "default")
    kept.add(_rows(3), "normal", SPEC)

    with pytest.raises(OSError):
        kept.write()
    blocked.unlink()
    again = kept.write()

    assert again
    assert len(KeptWindows(blocked, "default")) == 3


def test_rows_of_another_spec_start_the_dataset_afresh(tmp_path: Path) -> None:
    kept = KeptWindows(tmp_path, "default")
    raw = with_extractors(SPEC, ["raw"])
    kept.add(_rows(3), "normal", SPEC)
    kept.add(np.zeros((2, len(raw.features)), dtype=np.float32), "normal", raw)
    kept.write()

    with np.load(kept.path) as held:
        assert held["x"].shape == (2, len(raw.features))


def _left_over(tmp_path: Path, name: str) -> tuple[Path, subprocess.Popen[bytes]]:
    """A process named `name` in a session of its own, its pid where an agent writes its
    client's."""
    pid_file = tmp_path / "client.pid"
    process = subprocess.Popen(["bash", "-c", f"exec -a {name} sleep 30"], start_new_session=True)
    cmdline = Path(f"/proc/{process.pid}/cmdline")
    wait_until(
        lambda: cmdline.read_bytes().startswith(name.encode()), timeout_s=10, what="the exec"
    )
    pid_file.write_text(str(process.pid))
    return pid_file, process


def test_what_a_killed_agent_left_is_ended_only_when_it_is_a_supernode(tmp_path: Path) -> None:
    supernode_file, supernode = _left_over(tmp_path, "flower-supernode")
    kill_left_over(supernode_file)
    ended = supernode.wait(timeout=30)
    other_file, other = _left_over(tmp_path, "sleep")
    kill_left_over(other_file)
    with pytest.raises(subprocess.TimeoutExpired):
        other.wait(timeout=1)
    other.kill()
    other.wait()

    assert ended == -signal.SIGKILL
    assert not supernode_file.exists() and not other_file.exists()


@pytest.mark.anyio
async def test_a_client_that_exits_or_cannot_start_is_started_again_and_stopped_when_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edgestack.federated

    spawned: list[subprocess.Popen[bytes]] = []

    def start(superlink: str, windows: Path, workdir: Path, *, name: str) -> object:
        if not spawned and not exits:
            raise OSError("no space left on device")
        # The next exits at once, as a SuperNode refused by its SuperLink would.
        command = ["sh", "-c", "exit 3"] if not spawned else ["sleep", "30"]
        process = subprocess.Popen(command, start_new_session=True)
        spawned.append(process)
        return edgestack.federated.Node(process, workdir / f"{name}.log")

    monkeypatch.setattr(edgestack.federated, "start_client", start)
    exits: list[str] = []
    client = FederatedClient(
        "127.0.0.1:9",
        tmp_path / "w.npz",
        tmp_path,
        "supernode",
        backoff_s=(0.01, 0.05),
        exited=exits.append,
    )
    running = asyncio.create_task(client.run())
    for _ in range(200):
        await asyncio.sleep(0.05)
        if client.starts == 2:
            break
    pid_file_held = client.pid_file.read_text()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    assert client.starts == 2 and len(spawned) == 2
    assert "could not start (OSError: no space left on device)" in exits[0]
    assert "exited with status 3" in exits[1] and len(exits) == 2
    assert pid_file_held == str(spawned[-1].pid)
    assert spawned[-1].poll() is not None  # stopped with the task
    assert not client.pid_file.exists()


@pytest.mark.anyio
async def test_an_agent_starting_ends_the_client_its_killed_run_left(tmp_path: Path) -> None:
    (tmp_path / "federated" / "client").mkdir(parents=True)
    pid_file, supernode = _left_over(tmp_path / "federated" / "client", "flower-supernode")
    settings = AgentSettings(
        hub_url="http://127.0.0.1:9", enrol_token="t", device_id="edge-1", data_dir=tmp_path
    )
    agent = Agent(settings)
    try:
        await agent._restore()
    finally:
        await agent.link.aclose()
        agent.store.close()

    assert supernode.wait(timeout=30) == -signal.SIGKILL
    assert not pid_file.exists()
