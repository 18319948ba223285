"""The dashboard: a page of plain HTML, ES modules and CSS that the hub serves whole, with the
one library it draws charts with (Chart.js, installed by npm from this folder's lock file), so
a hub on a plant network with no internet shows it as well as one with. It reads and steers
the fleet through the API, logged in with a cookie."""

from edgestack.hub.ui.dashboard import ASSETS, CHARTS, STATIC, install_dashboard

__all__ = ["ASSETS", "CHARTS", "STATIC", "install_dashboard"]
