"""The API docs page and everything it loads come from the hub itself."""

import re

import httpx
import pytest

pytestmark = pytest.mark.anyio


async def test_the_docs_page_loads_only_what_the_hub_serves(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    loaded = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text) + re.findall(
        r"""url: ['"]([^'"]+)['"]""", page.text
    )
    assets = {url: await client.get(url) for url in loaded}
    redoc = await client.get("/redoc")

    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    assert loaded and all(url.startswith("/") for url in loaded), loaded  # no other host
    assert "/openapi.json" in loaded
    assert {url: r.status_code for url, r in assets.items()} == dict.fromkeys(loaded, 200)
    script = assets["/static/swagger/swagger-ui-bundle.js"]
    assert len(script.content) > 100_000 and "javascript" in script.headers["content-type"]
    assert redoc.status_code == 404  # its page loaded its script from a CDN: gone
