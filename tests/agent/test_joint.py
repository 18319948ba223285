"""Joint inference on a device: hard windows are queued by the hot path and sent by a task,
an answer in time counts for its tier, and anything else falls back to the device's own."""

import asyncio
from collections import Counter
from datetime import timedelta

import numpy as np
import pytest

from bundles import random_bundle
from edgestack.agent.joint import MAX_QUEUED, Offloader
from edgestack.bundle import Bundle, SplitPlan, TrustedKeys, digest
from edgestack.hub.signing import HubKeys
from edgestack.processing import vibration_spec
from edgestack.protocol import (
    BundleRef,
    InferenceAnswer,
    InferenceRequest,
    OffloadPolicy,
    OffloadReport,
)
from edgestack.serving import ModelServer

pytestmark = pytest.mark.anyio

WIDTH = len(vibration_spec().features)
# Two windows sure of their label, two in doubt between the first two labels.
PROBABILITIES = np.array(
    [[0.98, 0.01, 0.01], [0.01, 0.98, 0.01], [0.5, 0.49, 0.01], [0.4, 0.4, 0.2]]
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelServer, BundleRef]:
    keys = HubKeys(tmp_path_factory.mktemp("keys"))
    bundle = random_bundle(9, name="big", labels=("normal", "imbalance", "wear"))
    packed = Bundle(keys.sign(bundle.manifest, ttl=timedelta(days=1)), bundle.model).pack()
    server = ModelServer("edge", TrustedKeys(keys.public()))
    return server, server.load(packed, digest(packed))


def _rows(count: int) -> np.ndarray:
    return np.random.default_rng(count).normal(size=(count, WIDTH)).astype(np.float32)


async def _until_sent(offloader: Offloader, windows: int) -> OffloadReport:
    """The reports taken until `windows` windows were answered or fell back, within 10 s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    reports = []
    while loop.time() < deadline:
        reports.append(offloader.take())
        if sum(sum(r.answered.values()) + r.fallbacks for r in reports) >= windows:
            break
        await asyncio.sleep(0.01)
    return OffloadReport(
        windows=sum(r.windows for r in reports),
        answered={"edge": sum(r.answered.get("edge", 0) for r in reports)},
        predictions=sum((Counter(r.predictions) for r in reports), Counter()),
        fallbacks=sum(r.fallbacks for r in reports),
        uplink_bytes=sum(r.uplink_bytes for r in reports),
        latency_ms_p50=max((r.latency_ms_p50 or 0 for r in reports), default=None),
    )


async def test_hard_windows_are_answered_by_the_server_and_sure_ones_stay(
    served: tuple[ModelServer, BundleRef],
) -> None:
    server, model = served
    sent: list[InferenceRequest] = []

    async def send(body: bytes) -> bytes:
        request = InferenceRequest.model_validate_json(body)
        sent.append(request)
        return server.answer(request).model_dump_json().encode()

    policy = OffloadPolicy(model=model, gate="margin", threshold=0.5, server="http://127.0.0.1:1")
    offloader = Offloader(policy, send, asyncio.get_running_loop())
    task = asyncio.create_task(offloader.run())
    rows = _rows(4)

    offloader.offer(rows, PROBABILITIES, "features")
    report = await _until_sent(offloader, 2)
    task.cancel()

    assert report.windows == 2
    assert report.answered == {"edge": 2}
    assert sum(report.predictions.values()) == 2
    assert set(report.predictions) <= {"normal", "imbalance", "wear"}
    assert report.fallbacks == 0
    assert report.uplink_bytes > 0
    assert report.latency_ms_p50 is not None
    assert np.allclose(sent[0].rows, rows[2:])


async def test_a_server_that_does_not_answer_in_time_leaves_the_windows_to_the_device(
    served: tuple[ModelServer, BundleRef],
) -> None:
    _, model = served
    gone = asyncio.Event()

    async def send(body: bytes) -> bytes:
        await gone.wait()  # a server that never answers
        raise AssertionError("unreachable")

    policy = OffloadPolicy(model=model, tier="cloud", threshold=0.5, timeout_s=0.05)
    offloader = Offloader(policy, send, asyncio.get_running_loop())
    task = asyncio.create_task(offloader.run())

    offloader.offer(_rows(4), PROBABILITIES, "features")
    report = await _until_sent(offloader, 2)
    task.cancel()

    assert report.windows == 2
    assert report.fallbacks == 2
    assert report.answered == {"edge": 0}


async def test_an_offloader_stopped_as_its_request_fails_stops(
    served: tuple[ModelServer, BundleRef],
) -> None:
    _, model = served

    async def send(body: bytes) -> bytes:
        raise ConnectionRefusedError  # no server where the policy says: it fails at once

    policy = OffloadPolicy(model=model, tier="cloud", threshold=0.5, timeout_s=5)
    # The stop lands at each step of a send in turn, so also in the one where the request has
    # just failed: a stop taken for the request's failure would leave the task running on.
    for steps in range(40):
        offloader = Offloader(policy, send, asyncio.get_running_loop())
        task = asyncio.create_task(offloader.run())
        offloader.offer(_rows(4), PROBABILITIES, "features")
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=2)
        assert done == {task}, f"still running after a stop {steps} steps in"


async def test_a_full_queue_and_rows_no_request_carries_fall_back_at_once(
    served: tuple[ModelServer, BundleRef],
) -> None:
    _, model = served

    async def send(body: bytes) -> bytes:
        raise AssertionError("nothing is sent before the task runs")

    policy = OffloadPolicy(model=model, tier="cloud", gate="confidence", threshold=0.0)
    offloader = Offloader(policy, send, asyncio.get_running_loop())
    rows = _rows(MAX_QUEUED + 11)
    rows[0, 0] = np.nan
    doubtful = np.full((len(rows), 3), 1 / 3)
    doubtful[-1] = np.nan  # a window the model gave no probabilities cannot be scored

    offloader.offer(rows, doubtful, "features")
    report = offloader.take()

    assert report.windows == MAX_QUEUED + 10
    assert report.fallbacks == 10  # the NaN row, and the 9 the queue had no room for
    assert report.answered == {}


async def test_a_policy_without_a_threshold_offloads_nothing(
    served: tuple[ModelServer, BundleRef],
) -> None:
    _, model = served
    policy = OffloadPolicy(model=model, tier="cloud")

    async def send(body: bytes) -> bytes:
        return body

    with pytest.raises(ValueError, match="threshold: not calibrated"):
        Offloader(policy, send, asyncio.get_running_loop())


async def test_a_replaced_offloader_s_counts_and_queued_windows_reach_the_next_report(
    served: tuple[ModelServer, BundleRef],
) -> None:
    _, model = served

    async def send(body: bytes) -> bytes:
        raise AssertionError("the retired offloader's task never ran")

    loop = asyncio.get_running_loop()
    policy = OffloadPolicy(model=model, tier="cloud", gate="margin", threshold=0.5)
    before = Offloader(policy, send, loop)
    before.offer(_rows(4), PROBABILITIES, "features")

    before.retire()
    after = Offloader(policy.model_copy(update={"threshold": 0.9}), send, loop)
    after.carry_over(before)
    report, again = after.take(), before.take()

    assert (report.windows, report.fallbacks) == (2, 2)
    assert (again.windows, again.fallbacks) == (0, 0)


async def test_raw_windows_go_fewer_a_request_so_each_fits_the_wire(
    served: tuple[ModelServer, BundleRef],
) -> None:
    _, model = served
    sizes: list[int] = []

    async def send(body: bytes) -> bytes:
        request = InferenceRequest.model_validate_json(body)  # refused past the wire's bound
        sizes.append(len(request.rows))
        answer = InferenceAnswer(
            labels=["wide"] * len(request.rows),
            confidences=[1.0] * len(request.rows),
            tier="cloud",
            latency_ms=0.0,
        )
        return answer.model_dump_json().encode()

    policy = OffloadPolicy(model=model, tier="cloud", gate="confidence", threshold=0.0)
    offloader = Offloader(policy, send, asyncio.get_running_loop())
    task = asyncio.create_task(offloader.run())
    wide = np.ones((60, 20_000), dtype=np.float32)

    offloader.offer(wide, np.full((60, 3), 1 / 3), "raw")
    report = await _until_sent(offloader, 60)
    task.cancel()

    assert report.fallbacks == 0
    assert sum(sizes) == 60 and len(sizes) > 1


async def test_a_split_head_sends_the_tensors_of_the_windows_its_exit_is_unsure_of(
    served: tuple[ModelServer, BundleRef],
) -> None:
    _, tail = served
    sent: list[InferenceRequest] = []

    async def send(body: bytes) -> bytes:
        request = InferenceRequest.model_validate_json(body)
        sent.append(request)
        windows = request.tensors.windows if request.tensors else 0
        answer = InferenceAnswer(
            labels=["wear"] * windows, confidences=[0.9] * windows, tier="cloud", latency_ms=1
        )
        return answer.model_dump_json().encode()

    plan = SplitPlan(
        at=2,
        blocks=4,
        point="conv2",
        threshold=0.9,
        early_share=0.5,
        expected_ms=1,
        offload_bytes=6,
        scale=0.05,
        zero_point=-3,
    )
    # The policy's own gate and threshold would send every window; the split's decides.
    policy = OffloadPolicy(model=tail, tier="cloud", threshold=0.0)
    offloader = Offloader(policy, send, asyncio.get_running_loop())
    task = asyncio.create_task(offloader.run())
    tensors = np.arange(4 * 2 * 3, dtype=np.int8).reshape(4, 2, 3)

    offloader.offer_tensors(tensors, PROBABILITIES, plan)
    report = await _until_sent(offloader, 2)
    task.cancel()

    assert report.windows == 2 and report.fallbacks == 0
    assert report.predictions == {"wear": 2}
    (request,) = sent
    assert request.rows == [] and request.tensors is not None
    assert (request.tensors.dtype, request.tensors.shape) == ("int8", [2, 3])
    assert (request.tensors.scale, request.tensors.zero_point) == (0.05, -3)
    assert request.tensors.raw() == tensors[2:].tobytes()
