"""The API's interactive documentation, Swagger UI, served whole by the hub: a hub on a plant
network with no internet shows it as well as one with."""

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS", "install_docs"]

ASSETS = "/static/swagger"
"""Where the hub serves Swagger UI's scripts, styles and icons."""


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at `/docs` from the hub's own copy of its assets. Create the app with
    `docs_url=None`: FastAPI's own page loads them from a CDN."""
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title}: API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )
