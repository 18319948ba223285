from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from edgestack.agent.link import HubLink, HubRejected, HubUnavailable

pytestmark = pytest.mark.anyio


def _answering(status: int, **headers: str) -> HubLink:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"detail": "not now"}, headers=headers)

    return HubLink("http://hub", transport=httpx.MockTransport(answer))


@pytest.mark.parametrize("status", [408, 425, 429, 500, 503])
async def test_answers_that_mean_not_now_are_retried(status: int) -> None:
    link = _answering(status, **{"Retry-After": "120"})

    with pytest.raises(HubUnavailable) as caught:
        await link.ingest("edge-1", "events", b"")

    assert caught.value.retry_after_s == 120
    await link.aclose()


async def test_retry_after_may_be_a_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    link = _answering(503, **{"Retry-After": format_datetime(when, usegmt=True)})

    with pytest.raises(HubUnavailable) as caught:
        await link.ingest("edge-1", "events", b"")

    assert caught.value.retry_after_s is not None and 20 < caught.value.retry_after_s <= 30
    await link.aclose()


@pytest.mark.parametrize("status", [400, 409, 413, 422])
async def test_other_refusals_are_final(status: int) -> None:
    link = _answering(status)

    with pytest.raises(HubRejected) as caught:
        await link.ingest("edge-1", "events", b"")

    assert caught.value.status == status and "not now" in caught.value.detail
    await link.aclose()
