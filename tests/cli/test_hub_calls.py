"""The CLI talks to a hub only through `edgestack.client`: no command imports an HTTP library
or writes a path of the hub's API itself."""

import ast
from pathlib import Path

import pytest

from edgestack import cli
from edgestack.hub.api import API_PREFIX, LEGACY_PREFIX

MODULES = sorted(Path(cli.__file__).parent.glob("*.py"))
HTTP_LIBRARIES = {"httpx", "requests", "urllib", "http", "aiohttp"}
# The beginnings of the hub's paths: its API, the old one, and those at the root.
HUB_PATHS = (API_PREFIX + "/", LEGACY_PREFIX + "/", "/healthz", "/metrics", "/openapi.json")


@pytest.mark.parametrize("module", MODULES, ids=lambda path: path.name)
def test_a_command_reaches_the_hub_only_through_the_client(module: Path) -> None:
    tree = ast.parse(module.read_text(), str(module))

    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    }
    paths = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and any(hub_path in node.value for hub_path in HUB_PATHS)
    ]

    assert not imported & HTTP_LIBRARIES, (
        f"{module.name} imports {imported & HTTP_LIBRARIES}: call the hub through a method "
        "of edgestack.client.HubClient (add one there if it is missing)"
    )
    assert not paths, (
        f"{module.name} writes the hub's paths {paths}: call the HubClient method for them"
    )


def test_every_module_of_the_cli_is_looked_at() -> None:
    assert len(MODULES) >= 15
