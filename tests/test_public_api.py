import importlib
import pkgutil
import types

import pytest

import edgestack

PACKAGES = [
    name
    for _, name, is_pkg in pkgutil.walk_packages(edgestack.__path__, "edgestack.")
    if is_pkg and ".api" not in name and ".store" not in name
]


def _isort_style(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions: the order ruff keeps `__all__` in."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


@pytest.mark.parametrize("name", PACKAGES)
def test_package_exports_a_sorted_all_that_resolves(name: str) -> None:
    package = importlib.import_module(name)

    exported = package.__all__

    assert exported == sorted(exported, key=_isort_style)
    assert all(hasattr(package, item) for item in exported)


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_of_a_package_is_exported_on_purpose(name: str) -> None:
    package = importlib.import_module(name)

    public = {
        item
        for item, value in vars(package).items()
        if not item.startswith("_") and not isinstance(value, types.ModuleType)
    }

    assert public <= set(package.__all__)
