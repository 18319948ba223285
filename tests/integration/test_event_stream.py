"""The event stream of a real hub: a client that drops and comes back with the last id it saw
misses no event and sees none twice."""

import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from edgestack.demo import LocalFleet
from edgestack.protocol import Event, EventBatch, EventView, Hardware

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


def _send(fleet: LocalFleet, auth: dict[str, str], count: int) -> None:
    events = [
        Event(
            event_id=uuid.uuid4(),
            at=datetime.now(UTC),
            kind="alarm_raised",
            severity="warning",
            label="worn",
            message=f"alarm {i}",
        )
        for i in range(count)
    ]
    batch = EventBatch(batch_id=uuid.uuid4(), events=events)
    response = httpx.post(
        f"{fleet.hub_url}/v1/devices/edge-1/events",
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
