"""Logins and enrolments are counted by client address: past the limit, 429 with Retry-After
until the window has moved on."""

import asyncio
import threading

import httpx
import pytest

from edgestack.hub import HubSettings
from edgestack.hub.api import session
from edgestack.hub.api.deps import Caller, start_login
from edgestack.hub.context import HubContext
from edgestack.hub.ratelimit import SlidingWindow

from .factories import ADMIN_TOKEN, ENROL_TOKEN, HARDWARE

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(settings: HubSettings) -> HubSettings:
    return settings.model_copy(update={"login_failures": 2, "enrol_attempts": 3})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_failed_logins_past_the_limit_are_refused_until_retry_after(
    client: httpx.AsyncClient,
) -> None:
    failed = [await client.post("/api/v1/login", json={"token": "guess"}) for _ in range(2)]

    refused = await client.post("/api/v1/login", json={"token": ADMIN_TOKEN})

    assert [r.status_code for r in failed] == [401, 401]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 300
    assert "too many failed logins" in refused.json()["detail"]
    assert f"try again in {refused.headers['Retry-After']} s" in refused.json()["detail"]
    assert "set-cookie" not in refused.headers


async def test_good_logins_do_not_count(client: httpx.AsyncClient) -> None:
    logins = [await client.post("/api/v1/login", json={"token": ADMIN_TOKEN}) for _ in range(4)]

    assert [r.status_code for r in logins] == [200] * 4


async def test_enrolments_past_the_limit_are_refused_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    def body(i: int) -> dict[str, object]:
        return {
            "device_id": f"motor-{i}",
            "enrol_token": ENROL_TOKEN,
            "hardware": HARDWARE.model_dump(),
        }

    answers = [await client.post("/api/v1/enrol", json=body(i)) for i in range(4)]

    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert "too many enrolments" in answers[-1].json()["detail"]


def test_a_window_lets_an_address_in_again_once_its_oldest_hit_is_old_enough() -> None:
    clock = Clock()
    window = SlidingWindow(limit=2, window_s=60, clock=clock)
    window.hit("10.0.0.1")
    clock.now += 30
    window.hit("10.0.0.1")

    full = window.wait_s("10.0.0.1")
    other = window.wait_s("10.0.0.2")
    clock.now += 30
    after = window.take("10.0.0.1")
    again = window.take("10.0.0.1")

    assert full == 30
    assert other == 0
    assert after == 0
    assert again == 30


def test_an_address_whose_hits_are_all_out_of_the_window_is_forgotten() -> None:
    clock = Clock()
    window = SlidingWindow(limit=2, window_s=60, clock=clock)
    window.take("10.0.0.1")
    window.hit("10.0.0.2")
    unseen = window.wait_s("10.0.0.3")
    clock.now += 61

    window.take("10.0.0.4")

    assert unseen == 0
    assert len(window) == 1
    assert window.wait_s("10.0.0.4") == 0
    assert len(window) == 1


def test_the_table_of_addresses_never_grows_past_its_cap_forgetting_the_oldest() -> None:
    clock = Clock()
    window = SlidingWindow(limit=1, window_s=60, clock=clock, max_keys=3)

    for i in range(10):
        clock.now += 1
        window.take(f"10.0.0.{i}")

    assert len(window) == 3
    assert window.wait_s("10.0.0.9") > 0
    assert window.wait_s("10.0.0.0") == 0


async def test_guesses_sent_at_once_reach_the_token_check_no_more_often_than_the_limit(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    release = threading.Event()

    def slow_check(token: str, hub: HubContext) -> tuple[Caller, str] | None:
        # Held until every request has either got here or been refused, so each one's
        # counting and checking overlap the others'.
        checked.append(token)
        release.wait(timeout=30)
        return start_login(token, hub)

    monkeypatch.setattr(session, "start_login", slow_check)
    sent = [
        asyncio.create_task(client.post("/api/v1/login", json={"token": f"guess-{i}"}))
        for i in range(6)
    ]
    for _ in range(3000):
        if len(checked) + sum(task.done() for task in sent) == len(sent):
            break
        await asyncio.sleep(0.01)
    release.set()
    answers = [(await task).status_code for task in sent]

    assert len(checked) == 2
    assert sorted(answers) == [401, 401, 429, 429, 429, 429]
