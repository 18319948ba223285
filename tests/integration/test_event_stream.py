"""The event stream of a real hub, over Server-Sent Events and over a WebSocket: a client that
drops and comes back with the last id it saw misses no event and sees none twice."""

import itertools
import json
import queue
import threading
import uuid
from collections.abc import Generator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

from edgestack.client import HubClient, HubError, sse_events
from edgestack.demo import LocalFleet
from edgestack.protocol import Event, EventBatch, EventView, Hardware, TagsPatch

from .test_cli import cli

pytestmark = pytest.mark.integration


def _enrol(fleet: LocalFleet, device_id: str = "edge-1") -> dict[str, str]:
    body = {
        "device_id": device_id,
        "enrol_token": fleet.enrol_token,
        "hardware": Hardware(cores=1, ram_mb=256, arch="armv7l", providers=[]).model_dump(),
    }
    response = httpx.post(f"{fleet.hub_url}/v1/enrol", json=body)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['device_token']}"}


def _send(
    fleet: LocalFleet,
    auth: dict[str, str],
    count: int,
    device_id: str = "edge-1",
    severity: str = "warning",
) -> None:
    events = [
        Event.model_validate(
            {
                "event_id": uuid.uuid4(),
                "at": datetime.now(UTC),
                "kind": "alarm_raised",
                "severity": severity,
                "label": "worn",
                "message": f"alarm {i}",
            }
        )
        for i in range(count)
    ]
    batch = EventBatch(batch_id=uuid.uuid4(), events=events)
    response = httpx.post(
        f"{fleet.hub_url}/v1/devices/{device_id}/events",
        content=batch.model_dump_json(),
        headers={**auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text


def test_a_stream_resumed_with_the_last_id_misses_nothing_and_repeats_nothing(
    tmp_path: Path,
) -> None:
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        auth = _enrol(fleet)
        _send(fleet, auth, 3)
        seen: list[EventView] = []
        # A client that reads 3 alarms as they come, then drops the connection.
        first = fleet.client.stream_events(kinds=["alarm_raised"])
        seen += [next(first) for _ in range(3)]
        first.close()
        _send(fleet, auth, 4)  # while nobody listens
        resumed = fleet.client.stream_events(after_id=seen[-1].id, kinds=["alarm_raised"])
        # and 2 more while it listens again, sent from another thread
        sender = threading.Timer(1.0, _send, (fleet, auth, 2))
        sender.start()
        seen += [next(resumed) for _ in range(6)]
        resumed.close()
        sender.join()
        stored = [e for e in fleet.client.events(limit=1000) if e.event.kind == "alarm_raised"]

    assert [e.id for e in seen] == [e.id for e in stored]  # every one, in order, once
    assert len(stored) == 9


def _alarms(fleet: LocalFleet, device_id: str | None = None) -> list[int]:
    return [
        e.id
        for e in fleet.client.events(limit=1000)
        if e.event.kind == "alarm_raised" and device_id in (None, e.device_id)
    ]


def test_an_sse_client_dropping_mid_stream_while_events_arrive_resumes_with_each_once(
    tmp_path: Path,
) -> None:
    total = 40
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        auth = _enrol(fleet)
        # One alarm per call from another thread, all the while the client reads and drops.
        sender = threading.Thread(target=lambda: [_send(fleet, auth, 1) for _ in range(total)])
        sender.start()
        seen: list[EventView] = []
        headers = {"Authorization": f"Bearer {fleet.admin_token}"}
        with httpx.Client(base_url=fleet.hub_url, headers=headers, timeout=30) as http:
            for reads in itertools.chain([5, 10], itertools.repeat(total)):
                if seen:
                    headers["Last-Event-ID"] = str(seen[-1].id)
                params = {"kind": "alarm_raised"}
                with http.stream(
                    "GET", "/api/v1/events/stream", params=params, headers=headers
                ) as response:
                    assert response.status_code == 200
                    # Dropped after `reads` events: leaving the block closes the connection.
                    for view in itertools.islice(sse_events(response.iter_lines()), reads):
                        seen.append(view)
                        if len(seen) == total:
                            break
                if len(seen) >= total:
                    break
        sender.join()
        stored = _alarms(fleet)

    assert len(stored) == total
    assert [e.id for e in seen] == stored  # every one, in order, once


def _tagged(fleet: LocalFleet, device_id: str, **tags: str) -> dict[str, str]:
    auth = _enrol(fleet, device_id)
    fleet.client.tag(device_id, TagsPatch(tags=tags))
    return auth


def _take(
    events: Generator[EventView, None, None], count: int, timeout_s: float = 30
) -> list[EventView]:
    """The next `count` of `events`, which is closed after; fails when they do not come in
    time."""
    taken: queue.Queue[list[EventView] | BaseException] = queue.Queue()

    def take() -> None:
        try:
            taken.put(list(itertools.islice(events, count)))
        except BaseException as exc:
            taken.put(exc)
        finally:
            events.close()

    threading.Thread(target=take, daemon=True).start()
    got = taken.get(timeout=timeout_s)
    if isinstance(got, BaseException):
        raise got
    return got


def test_the_socket_sends_what_its_filters_take_and_resumes_after_the_last_id(
    tmp_path: Path,
) -> None:
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        one = _tagged(fleet, "edge-1", site="plant-4")
        two = _tagged(fleet, "edge-2", site="plant-9")
        _send(fleet, one, 2)
        _send(fleet, one, 1, severity="info")
        _send(fleet, two, 2, "edge-2")
        filters = {"tags": ["site=plant-4"], "kinds": ["alarm_raised"], "severity": "warning"}

        first = _take(fleet.client.socket_events(**filters), 1)
        _send(fleet, two, 1, "edge-2")  # while nobody listens
        _send(fleet, one, 1)
        resumed = fleet.client.socket_events(after_id=first[0].id, **filters)
        # Others arrive while it listens: edge-2's and an info one first, which it must skip.
        sender = threading.Timer(
            1.0,
            lambda: [
                _send(fleet, two, 1, "edge-2"),
                _send(fleet, one, 1, severity="info"),
                _send(fleet, one, 1),
            ],
        )
        sender.start()
        later = _take(resumed, 3)
        sender.join()
        every = fleet.client.events(limit=1000)
        listed = cli(fleet, "events", "--tag", "site=plant-9", "--json")

    wanted = [
        e.id
        for e in every
        if e.device_id == "edge-1"
        and e.event.kind == "alarm_raised"
        and e.event.severity == "warning"
    ]
    assert len(wanted) == 4
    assert [e.id for e in first + later] == wanted  # each once, in order
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert [e["id"] for e in json.loads(listed.stdout)] == [
        e.id for e in reversed(every) if e.device_id == "edge-2"
    ]


def test_the_socket_takes_the_login_cookie_and_refuses_saying_why(tmp_path: Path) -> None:
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()
        _enrol(fleet)
        login = httpx.post(f"{fleet.hub_url}/api/v1/login", json={"token": fleet.admin_token})
        cookie = "; ".join(f"{k}={v}" for k, v in login.cookies.items())
        url = fleet.hub_url.replace("http", "ws", 1) + "/api/v1/events/ws"
        own_page = {"Cookie": cookie, "Origin": fleet.hub_url}
        with connect(url, additional_headers=own_page, proxy=None) as socket:
            by_cookie = EventView.model_validate_json(socket.recv(timeout=30))
        refusals = []
        for query, headers in [
            ("", {}),
            ("", {"Authorization": "Bearer wrong"}),
            ("?tag=site", {"Cookie": cookie}),
            ("?severity=dire&kind=alarm_raised", {"Cookie": cookie}),
            ("", {"Cookie": cookie, "Origin": "http://apps.example"}),
            # A header that is no bearer token leaves the cookie in charge, and its check.
            (
                "",
                {"Cookie": cookie, "Origin": "http://apps.example", "Authorization": "Basic dTpw"},
            ),
        ]:
            with connect(url + query, additional_headers=headers, proxy=None) as socket:
                problem = json.loads(socket.recv(timeout=30))
                with pytest.raises(ConnectionClosedError) as closed:
                    socket.recv(timeout=30)
            assert closed.value.rcvd is not None
            refusals.append((closed.value.rcvd.code, closed.value.rcvd.reason, problem["detail"]))
        with (
            HubClient(fleet.hub_url, admin_token="wrong") as stranger,
            pytest.raises(HubError) as refused,
        ):
            _take(stranger.socket_events(), 1)

    assert by_cookie.event.kind == "device_enrolled"
    assert [code for code, _, _ in refusals] == [4401, 4401, 4422, 4422, 4403, 4403]
    assert all(detail.startswith(reason) and reason for _, reason, detail in refusals)
    assert "needs a token with the viewer role" in refusals[0][2]
    assert refusals[2][2].startswith("query.tag[0]: Value error, 'site' is no tag")
    assert refusals[3][2].startswith("query.severity: Input should be")
    assert "only from the hub's own pages, not from http://apps.example" in refusals[4][2]
    assert refused.value.status == 401
