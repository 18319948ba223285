"""Webhooks of a real hub delivering to a receiver on loopback that refuses at first: every
event the filters take arrives, signed, each at least once and in order; no other does; the
delivery log shows each attempt; a dead receiver is given up on, and neither it nor a slow
one holds up the rest."""

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from edgestack.demo import LocalFleet, wait_until
from edgestack.protocol import DeliveryView, EventView, TagsPatch, WebhookRequest, WebhookView

from .test_cli import cli
from .test_event_stream import _enrol, _send

pytestmark = pytest.mark.integration


@dataclass
class Receiver:
    """What the receiver saw: each verified delivery by its webhook-id, in arrival order, and
    how many it refused on purpose or for a bad signature. At /slow it answers nothing until
    `released`."""

    url: str
    refuse_first: int
    secret: str = ""
    verified: list[tuple[str, EventView]] = field(default_factory=list)
    forged: int = 0
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    released: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    seen = Receiver(url=f"http://127.0.0.1:{server.server_port}/hook", refuse_first=3)
    server.seen = seen  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield seen
    seen.released.set()
    server.shutdown()
    server.server_close()


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        seen: Receiver = self.server.seen  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.path == "/slow":
            seen.released.wait(timeout=60)
            return self._answer(204)
        with seen.lock:
            if seen.refused < seen.refuse_first:
                seen.refused += 1
                return self._answer(503)
            try:
                Webhook(seen.secret).verify(body, dict(self.headers.items()))
            except WebhookVerificationError:
                seen.forged += 1
                return self._answer(400)
            seen.verified.append((self.headers["webhook-id"], EventView.model_validate_json(body)))
        self._answer(204)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet


def _handled(fleet: LocalFleet, webhook_id: int) -> int:
    return next(w.delivered_id for w in fleet.client.webhooks() if w.id == webhook_id)


def _deliveries(fleet: LocalFleet, webhook_id: int) -> list[DeliveryView]:
    listed = cli(fleet, "webhooks", "deliveries", str(webhook_id), "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    return [DeliveryView.model_validate(d) for d in json.loads(listed.stdout)]


def test_a_receiver_refusing_at_first_gets_every_matching_event_signed_and_no_other(
    tmp_path: Path, receiver: Receiver
) -> None:
    settings = {
        "EDGESTACK_HUB_WEBHOOK_ATTEMPTS": "4",
        "EDGESTACK_HUB_WEBHOOK_BACKOFF_S": "0.05",
        "EDGESTACK_HUB_WEBHOOK_BACKOFF_CAP_S": "0.15",
        "EDGESTACK_HUB_WEBHOOK_TIMEOUT_S": "60",
    }
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub(env=settings)
        one, two = _enrol(fleet, "edge-1"), _enrol(fleet, "edge-2")
        fleet.client.tag("edge-1", TagsPatch(tags={"site": "plant-4"}))
        fleet.client.tag("edge-2", TagsPatch(tags={"site": "plant-9"}))
        filters = ["--tag", "site=plant-4", "--kind", "alarm_raised", "--severity", "warning"]
        added = cli(fleet, "webhooks", "add", receiver.url, *filters, "--json")
        assert added.returncode == 0, added.stdout + added.stderr
        hook = WebhookView.model_validate_json(added.stdout)
        assert hook.secret is not None
        receiver.secret = hook.secret
        # Nothing listens on a port just given back: every attempt fails.
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            gone = f"http://127.0.0.1:{closed.getsockname()[1]}/gone"
        dead = cli(fleet, "webhooks", "add", gone, *filters, "--json")
        dead_id = WebhookView.model_validate_json(dead.stdout).id
        slow = fleet.client.add_webhook(
            WebhookRequest(
                url=receiver.url.replace("/hook", "/slow"),
                tag=["site=plant-4"],
                kind=["alarm_raised"],
                severity="warning",
            )
        )

        _send(fleet, one, 2)
        _send(fleet, two, 2, "edge-2")  # another site
        _send(fleet, one, 1, severity="info")  # not bad enough
        _send(fleet, one, 2)
        matching = [
            e.id
            for e in fleet.client.events(limit=1000)
            if e.device_id == "edge-1" and e.event.severity == "warning"
        ]
        wait_until(
            lambda: {v.id for _, v in receiver.verified} >= set(matching),
            timeout_s=60,
            what="every matching event at the receiver",
        )
        wait_until(
            lambda: _handled(fleet, dead_id) >= matching[-1],
            timeout_s=60,
            what="the dead receiver's events given up on",
        )
        log = _deliveries(fleet, hook.id)
        dead_log = _deliveries(fleet, dead_id)
        # Still waiting for its first answer, which held up no other webhook.
        slow_before = fleet.client.deliveries(slow.id)
        receiver.released.set()
        wait_until(
            lambda: _handled(fleet, slow.id) >= matching[-1],
            timeout_s=60,
            what="the slow receiver's events delivered",
        )
        slow_log = fleet.client.deliveries(slow.id)
        # Delivered in order: had another event been sent, it would have come before these.
        _send(fleet, one, 1)
        wait_until(
            lambda: len({m for m, _ in receiver.verified}) > len(matching),
            timeout_s=60,
            what="the last event at the receiver",
        )
        removed = cli(fleet, "webhooks", "remove", str(dead_id))
        listed = cli(fleet, "webhooks", "list", "--json")

    assert len(matching) == 4
    assert receiver.forged == 0
    by_message = dict(receiver.verified)  # a retried message keeps its webhook-id
    arrived = [v.id for v in by_message.values()]
    assert arrived[:4] == matching
    assert all(m == f"evt_{v.id}" for m, v in by_message.items())
    assert [(d.event_id, d.attempt, d.outcome, d.status_code) for d in log[:4]] == [
        (matching[0], 1, "retrying", 503),
        (matching[0], 2, "retrying", 503),
        (matching[0], 3, "retrying", 503),
        (matching[0], 4, "delivered", 204),
    ]
    # Each wait doubles the one before, up to the cap.
    waits = [(d.next_attempt_at - d.at).total_seconds() for d in log[:3] if d.next_attempt_at]
    assert waits == pytest.approx([0.05, 0.1, 0.15], abs=1e-3)
    assert log[3].next_attempt_at is None
    assert [(d.event_id, d.outcome) for d in log[4:]] == [(i, "delivered") for i in matching[1:]]
    assert [(d.event_id, d.attempt, d.outcome) for d in dead_log] == [
        (i, n, "failed" if n == 4 else "retrying") for i in matching for n in range(1, 5)
    ]
    assert all(d.status_code is None and d.error for d in dead_log)
    assert slow_before == []
    assert [(d.event_id, d.outcome) for d in slow_log] == [(i, "delivered") for i in matching]
    assert removed.returncode == 0, removed.stdout
    assert [w["id"] for w in json.loads(listed.stdout)] == [hook.id, slow.id]
    assert all(w["secret"] is None for w in json.loads(listed.stdout))
