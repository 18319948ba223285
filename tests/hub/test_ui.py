"""The dashboard: its page and every module, style and library it loads come from the hub."""

import logging
import re
from pathlib import Path
from typing import get_args

import httpx
import pytest
from fastapi import FastAPI

from edgestack.hub import HubSettings, create_app, ui
from edgestack.hub.ui import dashboard
from edgestack.protocol import DeviceEventKind, HubEventKind

pytestmark = pytest.mark.anyio

STATIC = ui.STATIC
INSTALLED = (STATIC.parent / "node_modules" / "chart.js").is_dir()


async def _loaded(client: httpx.AsyncClient, url: str, seen: dict[str, httpx.Response]) -> None:
    """Fetch `url` and, for a script, every module it imports, into `seen`."""
    seen[url] = response = await client.get(url)
    if url.endswith(".js") and not url.startswith(ui.CHARTS):
        for imported in re.findall(r"""^import .* from "(\.{1,2}/[^"]+)";$""", response.text, re.M):
            target = str(httpx.URL(f"http://hub{url}").join(imported).path)
            if target not in seen:
                await _loaded(client, target, seen)


async def test_the_page_loads_only_what_the_hub_serves(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    linked = [
        url
        for url in re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        if not url.startswith(("#", "data:", "/docs"))
    ]
    seen: dict[str, httpx.Response] = {}
    for url in linked:
        await _loaded(client, url, seen)
    schema = (await client.get("/openapi.json")).json()

    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert all(url.startswith(ui.ASSETS + "/") for url in linked), linked  # no other host
    modules = {url for url in seen if url.endswith(".js") and not url.startswith(ui.CHARTS)}
    on_disk = {f"{ui.ASSETS}/{p.relative_to(STATIC)}" for p in STATIC.rglob("*.js")}
    assert modules == on_disk  # every page module is reached from app.js, and none is missing
    broken = {url: r.status_code for url, r in seen.items() if r.status_code != 200}
    if not INSTALLED:
        broken.pop(f"{ui.CHARTS}/chart.umd.js", None)  # the next test says what is missing
    assert broken == {}
    assert "/" not in schema["paths"]
    assert "default-src 'self'" in page.headers["content-security-policy"]


async def test_chart_js_is_served_from_the_hubs_own_copy(client: httpx.AsyncClient) -> None:
    if not INSTALLED:
        pytest.skip("Chart.js is not installed: run `make` (npm ci in src/edgestack/hub/ui)")

    script = await client.get(f"{ui.CHARTS}/chart.umd.js")

    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert len(script.content) > 100_000 and b"Chart" in script.content


async def test_without_chart_js_the_page_is_still_served_and_the_log_says_why(
    settings: HubSettings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(dashboard, "_CHART_JS", tmp_path / "no-chart-js")
    with caplog.at_level(logging.WARNING, logger="edgestack.hub.ui"):
        app: FastAPI = create_app(settings)

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://hub") as client,
    ):
        page = await client.get("/")
        script = await client.get(f"{ui.CHARTS}/chart.umd.js")

    assert page.status_code == 200
    assert script.status_code == 404
    assert "draws no charts: Chart.js is not installed" in caplog.text
    assert "npm ci" in caplog.text


def test_the_live_feed_listens_for_every_kind_of_event() -> None:
    feed = (STATIC / "feed.js").read_text()
    listed = re.search(r"export const EVENT_KINDS = \[(.*?)\];", feed, re.S)

    assert listed is not None
    kinds = re.findall(r'"(\w+)"', listed.group(1))
    assert sorted(kinds) == sorted(get_args(DeviceEventKind) + get_args(HubEventKind))
