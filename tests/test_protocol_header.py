"""Every call of the agent's link and of the admin client states the protocol it speaks."""

import httpx
import pytest

from edgestack.agent.link import HubLink
from edgestack.client import HubClient
from edgestack.protocol import PROTOCOL, PROTOCOL_HEADER, DesiredState, Hardware, ReportedState

REPORTED = ReportedState(
    desired_version=0,
    status="idle",
    hardware=Hardware(cores=1, ram_mb=64, arch="x86_64", providers=[]),
)


class _Recorder:
    def __init__(self, body: str = "[]") -> None:
        self.versions: list[str | None] = []
        self._body = body

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.versions.append(request.headers.get(PROTOCOL_HEADER))
        return httpx.Response(200, text=self._body)


def test_the_admin_client_states_its_protocol_on_every_call() -> None:
    recorder = _Recorder()
    client = HubClient("http://hub", admin_token="t", transport=httpx.MockTransport(recorder))

    client.devices()
    client.models()
    client.events()

    assert recorder.versions == [str(PROTOCOL)] * 3


@pytest.mark.anyio
async def test_the_agent_link_states_its_protocol_on_every_call() -> None:
    recorder = _Recorder(DesiredState().model_dump_json())
    link = HubLink("http://hub", transport=httpx.MockTransport(recorder))
    link.token = "device-token"

    await link.desired("edge-1", after=0, wait_s=0)
    await link.report("edge-1", REPORTED)
    await link.aclose()

    assert recorder.versions == [str(PROTOCOL)] * 2
