import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bundles import random_bundle
from edgestack.agent import Agent, AgentSettings
from edgestack.demo import LocalFleet
from edgestack.protocol import DeployRequest, DesiredPatch, RuleParams

pytestmark = pytest.mark.integration

MODEL_CALL_S = 0.3


async def _until(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        await asyncio.sleep(0.1)


def _inside(times: list[float], calls: list[tuple[float, float]]) -> int:
    """How many model calls saw at least one of `times` happen while they ran."""
    return sum(any(start < t < end for t in times) for start, end in calls)


@pytest.mark.anyio
async def test_a_slow_model_holds_up_neither_heartbeats_nor_the_twin(tmp_path: Path) -> None:
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        client = fleet.client
        agent = Agent(
            AgentSettings(
                hub_url=fleet.hub_url,
                enrol_token=fleet.enrol_token,
                device_id="edge-1",
                data_dir=tmp_path / "edge-1",
                chunk_s=0.05,
            )
        )
        run = asyncio.create_task(agent.run())
        await _until(lambda: asyncio.to_thread(lambda: bool(client.devices())), "enrolment")
        await asyncio.to_thread(client.register_model, random_bundle(3, name="slow").pack())
        await asyncio.to_thread(client.deploy, DeployRequest(model="slow", all=True, force=True))
        await asyncio.to_thread(
            client.update_desired, "edge-1", DesiredPatch(telemetry_interval_s=0.2)
        )

        async def model_running() -> bool:
            return agent.hot.model is not None

        await _until(model_running, "the model to load")
        assert agent.hot.model is not None
        calls: list[tuple[float, float]] = []
        lock = threading.Lock()
        predict = agent.hot.model.predictor.predict

        def slow(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            started = time.monotonic()
            time.sleep(MODEL_CALL_S)  # a model this device can barely run
            result = predict(features)
            with lock:
                calls.append((started, time.monotonic()))
            return result

        agent.hot.model.predictor.predict = slow  # type: ignore[method-assign]
        heartbeats: list[float] = []
        ingest = agent.link.ingest

        async def counted(*args: Any, **kwargs: Any) -> Any:
            if args[1] == "telemetry":
                heartbeats.append(time.monotonic())
            return await ingest(*args, **kwargs)

        agent.link.ingest = counted  # type: ignore[method-assign]
        ticks: list[float] = []

        async def probe() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.02)

        probing = asyncio.create_task(probe())

        async def enough() -> bool:
            # The first interval is the default one; the 0.2 s ones follow.
            return len(calls) >= 8 and len(heartbeats) >= 5

        await _until(enough, "eight slow model calls and five heartbeats")
        changed = await asyncio.to_thread(
            client.update_desired, "edge-1", DesiredPatch(rules=RuleParams(trigger_windows=9))
        )

        async def reported() -> bool:
            device = await asyncio.to_thread(client.device, "edge-1")
            return bool(device.reported and device.reported.desired_version == changed.version)

        await _until(reported, "the twin to apply and report the change")
        probing.cancel()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    with lock:
        finished = list(calls)
    # Were the loop blocked by the model, nothing on it could happen while the model ran.
    assert _inside(ticks, finished) >= len(finished) // 2
    assert _inside(heartbeats, finished) >= 1
    assert agent.hot.rule.params.trigger_windows == 9
