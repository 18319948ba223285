"""The rollout state machine, driven with crafted shadow reports and ticks at chosen times."""

import itertools
import math
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st

from edgestack.bundle import Bundle
from edgestack.hub import HubSettings, create_app
from edgestack.hub.app import hub_of
from edgestack.hub.context import HubContext
from edgestack.hub.controller import Controller
from edgestack.hub.store import leases, rollouts, utcnow
from edgestack.monitoring import LatencyHistogram, reference
from edgestack.protocol import (
    BundleRef,
    DesiredState,
    Event,
    EventBatch,
    Feeds,
    Gate,
    ReportedState,
    RolloutView,
    ShadowReport,
)

from .factories import (
    ADMIN,
    ENROL_TOKEN,
    FEEDS,
    HARDWARE,
    SPEC,
    Device,
    Ready,
    packed_bundle,
    telemetry_batch,
    wait_until,
)

pytestmark = pytest.mark.anyio

RAW = {**ADMIN, "Content-Type": "application/octet-stream"}
GATE = {"agreement": 0.9, "p99_ms": 50}
_SEQ = itertools.count(1)


@pytest.fixture
def settings(settings: HubSettings) -> HubSettings:
    # The tests step rollouts themselves, at the times they choose.
    return settings.model_copy(update={"control_tick_s": 60})


async def _register(client: httpx.AsyncClient, version: int) -> BundleRef:
    data = packed_bundle("motor", version, model=f"model v{version}".encode())
    response = await client.post("/api/v1/models", content=data, headers=RAW)
    assert response.status_code == 201, response.text
    return BundleRef.model_validate(response.json())


@pytest.fixture
async def fleet(client: httpx.AsyncClient, ready: Ready) -> dict[str, Device]:
    """Four devices running motor v1; motor v2 registered, the candidate."""
    devices = {name: await ready(name) for name in ("d1", "d2", "d3", "d4")}
    await _register(client, 1)
    response = await client.post(
        "/api/v1/deployments", json={"model": "motor", "version": 1, "all": True}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    await _register(client, 2)
    return devices


async def _start(client: httpx.AsyncClient, **changes: Any) -> RolloutView:
    body = {
        "model": "motor",
        "to": ["all"],
        "waves": [0.5, 1.0],
        "shadow_s": 30,
        "gate": GATE,
        "min_windows": 10,
        "abort_failures": 0.4,
        **changes,
    }
    response = await client.post("/api/v1/rollouts", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return RolloutView.model_validate(response.json())


async def _report(
    client: httpx.AsyncClient,
    device: Device,
    candidate: BundleRef,
    *,
    windows: int = 20,
    agreed: int | None = None,
    timed: bool = True,
    drift: dict[str, Any] | None = None,
    predictions: dict[str, int] | None = None,
) -> None:
    latency = LatencyHistogram()
    if timed:
        latency.add(0.002)
    shadow = ShadowReport(
        bundle=candidate,
        windows=windows,
        agreed=windows if agreed is None else agreed,
        latency=latency.sparse(),
        drift=drift,
        drift_psi=max(drift["psi"]) if drift else None,
        predictions=predictions or {},
    )
    batch = telemetry_batch(next(_SEQ), shadow=shadow.model_dump(mode="json"))
    response = await client.post(
        f"/api/v1/devices/{device.device_id}/telemetry",
        content=batch.model_dump_json(),
        headers=device.auth,
    )
    assert response.status_code == 200, response.text


def _tick(hub: HubContext, after_s: float) -> list[str]:
    with hub.db.writer() as session:
        changed = rollouts.advance(session, utcnow() + timedelta(seconds=after_s))
        session.commit()
    return changed


async def _rollout(client: httpx.AsyncClient, rollout_id: int = 1) -> RolloutView:
    response = await client.get(f"/api/v1/rollouts/{rollout_id}", headers=ADMIN)
    assert response.status_code == 200, response.text
    return RolloutView.model_validate(response.json())


async def _desired(client: httpx.AsyncClient, device_id: str) -> DesiredState:
    response = await client.get(f"/api/v1/devices/{device_id}", headers=ADMIN)
    return DesiredState.model_validate(response.json()["desired"])


async def _kinds(client: httpx.AsyncClient) -> list[str]:
    views = (await client.get("/api/v1/events", headers=ADMIN)).json()
    return [v["event"]["kind"] for v in views if v["event"]["kind"].startswith("rollout")]


async def test_waves_split_the_sorted_targets_and_the_first_runs_in_shadow(
    client: httpx.AsyncClient, fleet: dict[str, Device]
) -> None:
    rollout = await _start(client, waves=[0.3, 0.6, 1.0])

    assert [w.devices for w in rollout.waves] == [["d1", "d2"], ["d3"], ["d4"]]
    assert [w.state for w in rollout.waves] == ["shadowing", "waiting", "waiting"]
    v1, v2 = rollout.previous["d1"], rollout.candidate
    first = await _desired(client, "d1")
    assert (first.bundle, first.shadow, first.keep) == (v1, v2, [v1])
    assert (await _desired(client, "d3")).shadow is None
    assert await _kinds(client) == ["rollout_started", "rollout_wave_started"]


async def test_a_gate_that_holds_promotes_the_wave_and_starts_the_next(
    client: httpx.AsyncClient, hub: HubContext, fleet: dict[str, Device]
) -> None:
    rollout = await _start(client)
    v1, v2 = rollout.previous["d1"], rollout.candidate
    for name in ("d1", "d2"):
        await _report(client, fleet[name], v2, windows=20, agreed=19)

    early = _tick(hub, 5)
    changed = _tick(hub, 31)

    assert early == []
    after = await _rollout(client)
    assert [w.state for w in after.waves] == ["promoted", "shadowing"]
    assert after.waves[0].readings is not None and after.waves[0].readings.agreement == 0.95
    assert sorted(changed) == ["d1", "d2", "d3", "d4"]
    promoted = await _desired(client, "d1")
    assert (promoted.bundle, promoted.shadow, promoted.keep) == (v2, None, [v1])
    assert (await _desired(client, "d3")).shadow == v2
    assert "rollout_wave_promoted" in await _kinds(client)


async def test_the_last_wave_promoted_completes_and_commits(
    client: httpx.AsyncClient, hub: HubContext, fleet: dict[str, Device]
) -> None:
    rollout = await _start(client)
    v2 = rollout.candidate
    for wave in (("d1", "d2"), ("d3", "d4")):
        for name in wave:
            await _report(client, fleet[name], v2)
        _tick(hub, 31)

    after = await _rollout(client)
    assert after.state == "completed"
    assert after.finished_at is not None
    for name in fleet:
        desired = await _desired(client, name)
        assert (desired.bundle, desired.shadow, desired.keep) == (v2, None, [])
    assert (await _kinds(client))[-1] == "rollout_completed"


async def test_a_gate_that_fails_rolls_back_every_device_of_its_wave_and_no_further_wave(
    client: httpx.AsyncClient, hub: HubContext, fleet: dict[str, Device]
) -> None:
    rollout = await _start(client)
    v1, v2 = rollout.previous["d1"], rollout.candidate
    await _report(client, fleet["d1"], v2, windows=20, agreed=20)
    await _report(client, fleet["d2"], v2, windows=20, agreed=2)
    untouched = (await _desired(client, "d3")).version

    _tick(hub, 31)
    _tick(hub, 3600)

    after = await _rollout(client)
    assert after.state == "rolled_back"
    assert [w.state for w in after.waves] == ["rolled_back", "waiting"]
    assert after.waves[0].verdict is not None and "agreement 0.55" in after.waves[0].verdict
    for name in ("d1", "d2"):
        desired = await _desired(client, name)
        assert (desired.bundle, desired.shadow, desired.keep) == (v1, None, [])
    assert (await _desired(client, "d3")).version == untouched
    kinds = await _kinds(client)
    assert kinds[-1] == "rollout_rolled_back"
    assert kinds.count("rollout_wave_started") == 1


async def test_a_gate_without_enough_data_holds_and_is_never_promoted_by_waiting(
    client: httpx.AsyncClient, hub: HubContext, fleet: dict[str, Device]
) -> None:
    rollout = await _start(client)
    v2 = rollout.candidate
    await _report(client, fleet["d1"], v2, windows=50)
    await _report(client, fleet["d2"], v2, windows=3)

    for after_s in (31, 3600, 86_400 * 30):
        _tick(hub, after_s)

    held = await _rollout(client)
    assert held.state == "held"
    assert held.waves[0].state == "held"
    assert held.waves[0].readings is not None and held.waves[0].readings.short == ["d2"]
    assert (await _desired(client, "d1")).bundle == held.previous["d1"]
    assert (await _kinds(client)).count("rollout_wave_held") == 1
    # Data that comes late still decides.
    await _report(client, fleet["d2"], v2, windows=20)
    _tick(hub, 31)
    assert (await _rollout(client)).waves[0].state == "promoted"


async def test_a_gate_term_without_a_reading_holds(
    client: httpx.AsyncClient, hub: HubContext, fleet: dict[str, Device]
) -> None:
    rollout = await _start(client)
    for name in ("d1", "d2"):
        await _report(client, fleet[name], rollout.candidate, timed=False)

    _tick(hub, 31)

    held = await _rollout(client)
    assert held.state == "held"
    assert held.waves[0].verdict == "no reading of p99_ms"


async def test_reports_of_another_bundle_are_not_the_candidates(
    client: httpx.AsyncClient, hub: HubContext, fleet: dict[str, Device]
) -> None:
    rollout = await _start(client)
    other = rollout.candidate.model_copy(update={"digest": "0" * 64})
    for name in ("d1", "d2"):
        await _report(client, fleet[name], other)
        await _report(client, fleet[name], rollout.candidate, windows=20, agreed=0)

    _tick(hub, 31)

    after = await _rollout(client)
    assert after.state == "rolled_back"
    assert after.waves[0].readings is not None and after.waves[0].readings.windows == 40


async def test_too_many_devices_failing_the_candidate_roll_the_wave_back_at_once(
    client: httpx.AsyncClient, hub: HubContext, fleet: dict[str, Device]
) -> None:
    rollout = await _start(client)
    v1 = rollout.previous["d1"]
    failed = Event(
        event_id=uuid.uuid4(),
        at=datetime.now(UTC),
        kind="load_failed",
        severity="warning",
        message="bundle motor v2 cannot run here",
        bundle_digest=rollout.candidate.digest,
    )
    batch = EventBatch(batch_id=uuid.uuid4(), events=[failed])
    response = await client.post(
        "/api/v1/devices/d2/events", content=batch.model_dump_json(), headers=fleet["d2"].auth
    )
    assert response.status_code == 200, response.text

    _tick(hub, 1)

    after = await _rollout(client)
    assert after.state == "rolled_back"
    assert after.waves[0].readings is not None and after.waves[0].readings.failed == ["d2"]
    assert (await _desired(client, "d1")).bundle == v1


async def test_pause_stops_judging_and_resume_picks_up_where_it_was(
    client: httpx.AsyncClient, hub: HubContext, fleet: dict[str, Device]
) -> None:
    rollout = await _start(client)
    for name in ("d1", "d2"):
        await _report(client, fleet[name], rollout.candidate)

    paused = await client.post("/api/v1/rollouts/1/pause", headers=ADMIN)
    _tick(hub, 31)
    still = await _rollout(client)
    resumed = await client.post("/api/v1/rollouts/1/resume", headers=ADMIN)
    _tick(hub, 31)

    assert paused.json()["state"] == "paused"
    assert still.waves[0].state == "shadowing"
    assert resumed.json()["state"] == "shadowing"
    assert (await _rollout(client)).waves[0].state == "promoted"
    again = await client.post("/api/v1/rollouts/1/resume", headers=ADMIN)
    assert again.status_code == 409
    assert "only a rollout paused can resume" in again.json()["detail"]


async def test_an_operator_promotes_a_held_wave(
    client: httpx.AsyncClient, hub: HubContext, fleet: dict[str, Device]
) -> None:
    rollout = await _start(client)
    _tick(hub, 31)
    assert (await _rollout(client)).state == "held"

    response = await client.post("/api/v1/rollouts/1/promote", headers=ADMIN)

    assert response.status_code == 200, response.text
    after = RolloutView.model_validate(response.json())
    assert [w.state for w in after.waves] == ["promoted", "shadowing"]
    assert after.waves[0].verdict == "promoted by an operator"
    assert (await _desired(client, "d1")).bundle == rollout.candidate


async def test_abort_puts_every_touched_device_back(
    client: httpx.AsyncClient, hub: HubContext, fleet: dict[str, Device]
) -> None:
    rollout = await _start(client)
    v1 = rollout.previous["d1"]
    await client.post("/api/v1/rollouts/1/promote", headers=ADMIN)

    response = await client.post("/api/v1/rollouts/1/abort", headers=ADMIN)

    assert response.json()["state"] == "aborted"
    for name in fleet:
        desired = await _desired(client, name)
        assert (desired.bundle, desired.shadow, desired.keep) == (v1, None, [])
    assert (await _kinds(client))[-1] == "rollout_aborted"
    again = await client.post("/api/v1/rollouts/1/abort", headers=ADMIN)
    assert again.status_code == 409
    assert (await client.post("/api/v1/rollouts/1/rollback", headers=ADMIN)).status_code == 409


async def test_rollback_after_completion_puts_every_device_back(
    client: httpx.AsyncClient, hub: HubContext, fleet: dict[str, Device]
) -> None:
    rollout = await _start(client, waves=[1.0])
    await client.post("/api/v1/rollouts/1/promote", headers=ADMIN)
    assert (await _rollout(client)).state == "completed"

    response = await client.post("/api/v1/rollouts/1/rollback", headers=ADMIN)

    assert response.status_code == 200, response.text
    assert response.json()["state"] == "rolled_back"
    for name in fleet:
        assert (await _desired(client, name)).bundle == rollout.previous[name]


async def test_a_deploy_undeploy_or_rollout_to_devices_in_a_rollout_is_refused_naming_it(
    client: httpx.AsyncClient, fleet: dict[str, Device]
) -> None:
    await _start(client, to=["d1", "d2"])
    undeploy = await client.post("/api/v1/undeployments", json={"devices": ["d1"]}, headers=ADMIN)

    deploy = await client.post(
        "/api/v1/deployments", json={"model": "motor", "devices": ["d2", "d4"]}, headers=ADMIN
    )
    second = await client.post(
        "/api/v1/rollouts", json={"model": "motor", "to": ["d1"]}, headers=ADMIN
    )
    free = await client.post(
        "/api/v1/deployments", json={"model": "motor", "devices": ["d3"]}, headers=ADMIN
    )

    assert deploy.status_code == 409
    assert "devices d2 are in rollout 1" in deploy.json()["detail"]
    untouched = (await _desired(client, "d4")).bundle
    assert untouched is not None and untouched.version == 1
    assert "edgestack rollout abort 1" in deploy.json()["detail"]
    assert second.status_code == 409
    assert free.status_code == 200
    assert undeploy.status_code == 409 and "in rollout 1" in undeploy.json()["detail"]
    assert (await _desired(client, "d1")).bundle is not None


@pytest.mark.parametrize(
    ("changes", "status", "words"),
    [
        ({"waves": [0.5, 0.2]}, 422, "rising, the last 1"),
        ({"waves": [0.5]}, 422, "rising, the last 1"),
        ({"gate": {"agreement": 2}}, 422, "agreement"),
        ({"gate": {"drift_psi": 0.2}}, 422, "gate.drift_psi: model 'motor' version 2 carries"),
        ({"to": ["ghost"]}, 404, "ghost"),
        ({"version": 9}, 404, "no version 9"),
    ],
)
async def test_a_bad_rollout_is_refused_naming_the_field(
    client: httpx.AsyncClient,
    fleet: dict[str, Device],
    changes: dict[str, Any],
    status: int,
    words: str,
) -> None:
    body = {"model": "motor", "to": ["all"], **changes}

    response = await client.post("/api/v1/rollouts", json=body, headers=ADMIN)

    assert response.status_code == status, response.text
    assert words in response.json()["detail"]
    assert (await client.get("/api/v1/rollouts", headers=ADMIN)).json() == []


async def test_a_device_that_cannot_run_the_candidate_is_refused_unless_forced(
    client: httpx.AsyncClient, ready: Ready, fleet: dict[str, Device]
) -> None:
    await ready("d5", feeds=Feeds(sensors=["mic"], rate_hz=400, extractors=["time_stats"]))
    deploy = {"model": "motor", "version": 1, "devices": ["d5"], "force": True}
    assert (await client.post("/api/v1/deployments", json=deploy, headers=ADMIN)).status_code == 200

    refused = await client.post(
        "/api/v1/rollouts", json={"model": "motor", "to": ["all"]}, headers=ADMIN
    )
    forced = await client.post(
        "/api/v1/rollouts", json={"model": "motor", "to": ["all"], "force": True}, headers=ADMIN
    )

    assert refused.status_code == 409
    assert "d5: model needs sensors" in refused.json()["detail"]
    assert forced.status_code == 201


async def test_a_device_without_a_model_of_the_same_input_is_refused_a_shadow(
    client: httpx.AsyncClient, ready: Ready, fleet: dict[str, Device]
) -> None:
    await ready("d5")
    other = Bundle.create(
        name="other",
        labels=["normal", "worn"],
        input=SPEC.model_copy(update={"hop": 16}),
        model=b"other",
    ).pack()
    assert (await client.post("/api/v1/models", content=other, headers=RAW)).status_code == 201
    deploy = {"model": "other", "devices": ["d4"]}
    assert (await client.post("/api/v1/deployments", json=deploy, headers=ADMIN)).status_code == 200

    response = await client.post(
        "/api/v1/rollouts", json={"model": "motor", "to": ["all"]}, headers=ADMIN
    )

    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "cannot run in shadow on 2 of 5 devices" in detail
    assert "d4 runs other v1 of another input spec" in detail
    assert "d5 runs no model to compare it with" in detail


async def test_the_controller_steps_rollouts_only_while_it_holds_its_lease(
    client: httpx.AsyncClient, hub: HubContext, fleet: dict[str, Device]
) -> None:
    rollout = await _start(client, shadow_s=0)
    for name in ("d1", "d2"):
        await _report(client, fleet[name], rollout.candidate)
    controller = Controller(hub, hub.settings.control_tick_s)
    with hub.db.writer() as session:
        # The app's own controller took the lease at its first tick; the next is a minute off.
        leases.release(session, leases.CONTROLLER, hub.holder)
        assert leases.take(session, leases.CONTROLLER, "another replica", 60)
        session.commit()

    idle = controller.tick()
    waves_while_idle = [w.state for w in (await _rollout(client)).waves]
    with hub.db.writer() as session:
        leases.release(session, leases.CONTROLLER, "another replica")
        session.commit()
    stepped = controller.tick()

    assert idle == [] and waves_while_idle == ["shadowing", "waiting"]
    assert sorted(stepped) == ["d1", "d2", "d3", "d4"]
    assert [w.state for w in (await _rollout(client)).waves] == ["promoted", "shadowing"]


async def test_a_hub_started_again_resumes_the_rollout_where_it_was(
    settings: HubSettings, tmp_path: Path
) -> None:
    first = create_app(settings)
    async with first.router.lifespan_context(first), _client(first) as client:
        devices = {name: await _ready(client, name) for name in ("d1", "d2")}
        await _register(client, 1)
        await client.post(
            "/api/v1/deployments", json={"model": "motor", "all": True}, headers=ADMIN
        )
        await _register(client, 2)
        rollout = await _start(client, shadow_s=0)
        await _report(client, devices["d1"], rollout.candidate)
    # Ticking often now: the controller of the new hub steps the rollout on its own.
    again = create_app(settings.model_copy(update={"control_tick_s": 0.05}))
    async with again.router.lifespan_context(again), _client(again) as client:
        # Its controller may already have promoted the first wave on d1's report from before
        # the restart; what it must not do is begin the rollout again or lose it.
        assert (await _rollout(client)).waves[0].state in ("shadowing", "held", "promoted")
        await wait_until(lambda: _state(again)[0] == "promoted")
        await _report(client, devices["d2"], rollout.candidate)
        await wait_until(lambda: _state(again) == ["promoted", "promoted"])

        assert (await _rollout(client)).state == "completed"
        assert (await _desired(client, "d2")).bundle == rollout.candidate


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://hub")


def _state(app: FastAPI) -> list[str]:
    with hub_of(app).db.session() as session:
        return [w.state for w in rollouts.view(rollouts.get(session, 1)).waves]


async def _ready(client: httpx.AsyncClient, device_id: str) -> Device:
    body = {"device_id": device_id, "enrol_token": ENROL_TOKEN, "hardware": HARDWARE.model_dump()}
    response = await client.post("/api/v1/enrol", json=body)
    device = Device(device_id, response.json()["device_token"])
    state = ReportedState(desired_version=0, status="idle", hardware=HARDWARE, feeds=FEEDS)
    await client.put(
        f"/api/v1/devices/{device_id}/reported",
        content=state.model_dump_json(),
        headers=device.auth,
    )
    return device


@given(
    count=st.integers(min_value=1, max_value=50),
    cuts=st.lists(st.floats(min_value=0.01, max_value=0.99), max_size=5, unique=True),
)
def test_waves_take_every_target_once_in_order_each_at_most_its_share(
    count: int, cuts: list[float]
) -> None:
    chosen = [f"d{i:02d}" for i in range(count)]
    shares = [*sorted(cuts), 1.0]

    waves = rollouts._split(chosen, shares)

    assert [d for wave in waves for d in wave] == chosen
    assert all(waves)
    # Each wave ends where its share of the targets, rounded up, ends.
    ends = list(itertools.accumulate(len(w) for w in waves))
    assert set(ends) == {math.ceil(s * count - 1e-9) for s in shares} - {0}


@given(
    agreement=st.none() | st.floats(0, 1),
    p99_ms=st.none() | st.floats(0, 1000),
    error_rate=st.none() | st.floats(0, 1),
    drift_psi=st.none() | st.floats(0, 100),
)
def test_a_gate_written_out_parses_back_to_itself(
    agreement: float | None, p99_ms: float | None, error_rate: float | None, drift_psi: float | None
) -> None:
    gate = Gate(agreement=agreement, p99_ms=p99_ms, error_rate=error_rate, drift_psi=drift_psi)

    again = Gate.parse(str(gate))

    for name in ("agreement", "p99_ms", "error_rate", "drift_psi"):
        value, parsed = getattr(gate, name), getattr(again, name)
        assert (value is None) == (parsed is None)
        if value is not None:
            assert parsed == pytest.approx(value, rel=1e-5, abs=1e-9)


async def test_drift_is_read_from_the_bin_counts_of_every_report_added_up(
    client: httpx.AsyncClient, hub: HubContext, fleet: dict[str, Device]
) -> None:
    rows = np.random.default_rng(0).normal(size=(1000, len(SPEC.features)))
    ref = reference(rows)
    candidate = Bundle.create(
        name="motor", labels=["normal", "worn"], input=SPEC, model=b"v3", reference=ref
    ).pack()
    assert (await client.post("/api/v1/models", content=candidate, headers=RAW)).status_code == 201
    rollout = await _start(client, gate={"drift_psi": 0.1})
    # Each device saw a few windows: alone, their bins are far from the reference's shares.
    share = np.array(ref.shares)
    halves = [np.floor(share * 20), np.ceil(share * 20)]
    for name, counts in zip(("d1", "d2"), halves, strict=True):
        drift = {"counts": counts.astype(int).tolist(), "psi": [5.0, 5.0], "ks": [0.5, 0.5]}
        await _report(client, fleet[name], rollout.candidate, drift=drift)

    _tick(hub, 31)

    after = await _rollout(client)
    readings = after.waves[0].readings
    assert readings is not None and readings.drift_psi is not None
    assert readings.drift_psi < 0.1
    assert after.waves[0].state == "promoted"


async def test_an_accuracy_gate_reads_the_candidate_on_feedback_and_waits_for_it(
    client: httpx.AsyncClient, hub: HubContext, fleet: dict[str, Device]
) -> None:
    rollout = await _start(client, gate={"accuracy": 0.8})
    v2 = rollout.candidate
    # d1's machine was worn, d2's normal; the candidate says worn nearly always.
    for name in ("d1", "d2"):
        await _report(client, fleet[name], v2, windows=20, predictions={"worn": 19, "normal": 1})
    unlabelled = _tick(hub, 31)
    waiting = await _rollout(client)
    spans = [
        {"device_id": name, "start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z",
         "label": label}
        for name, label in (("d1", "worn"), ("d2", "normal"))
    ]  # fmt: skip
    posted = await client.post(
        "/api/v1/feedback", json={"batch_id": str(uuid.uuid4()), "spans": spans}, headers=ADMIN
    )
    _tick(hub, 32)
    judged = await _rollout(client)

    assert unlabelled == [] and waiting.waves[0].state == "held"
    assert "no reading of accuracy" in (waiting.waves[0].verdict or "")
    assert posted.status_code == 200, posted.text
    readings = judged.waves[0].readings
    assert readings is not None and (readings.accuracy, readings.labelled) == (0.5, 40)
    assert judged.state == "rolled_back"
    assert "accuracy 0.5 (want >= 0.8)" in (judged.waves[0].verdict or "")
