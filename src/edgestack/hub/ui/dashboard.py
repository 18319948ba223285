"""Serving the dashboard: its page, its modules and styles, and Chart.js, all from the hub."""

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS", "CHARTS", "STATIC", "install_dashboard"]

log = logging.getLogger("edgestack.hub.ui")

ASSETS = "/ui"
"""Where the hub serves the dashboard's scripts and styles; the page itself is at `/`."""
CHARTS = f"{ASSETS}/vendor/chart.js"
"""Where the hub serves Chart.js's UMD build, which `make` installs with npm."""

_HERE = Path(__file__).parent
STATIC = _HERE / "static"
"""The page, its ES modules and its styles, as the hub serves them."""
_CHART_JS = _HERE / "node_modules" / "chart.js" / "dist"
# The page runs only the hub's own scripts and talks only to the hub: a value that slipped
# into the page as markup could neither run nor send anything elsewhere.
_PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


def install_dashboard(app: FastAPI) -> None:
    """Serve the dashboard at `/` and its assets under `ASSETS`. Without Chart.js installed
    (`npm ci` in this package's folder) the page still works and says its charts cannot be
    drawn; the log says why."""
    if (_CHART_JS / "chart.umd.js").is_file():
        app.mount(CHARTS, StaticFiles(directory=_CHART_JS), name="chart.js")
    else:
        log.warning(
            "the dashboard draws no charts: Chart.js is not installed in %s; run `make` "
            "(or `npm ci` in that folder)",
            _HERE,
        )
    app.mount(ASSETS, StaticFiles(directory=STATIC), name="dashboard")

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=_PAGE_HEADERS)
