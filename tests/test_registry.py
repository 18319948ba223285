import sys

import pytest

from edgestack.processing import STEPS
from edgestack.registry import Registry, RegistryError
from edgestack.sensing import MotorSimulator, Source


def test_a_lazy_class_is_listed_before_it_loads_and_built_from_its_path() -> None:
    sources = Registry[Source]("source", group="tests.sources")
    sources.add_lazy("motor", "edgestack.sensing.motor:MotorSimulator")

    listed = sources.names()
    built = sources.build("motor", {"seed": 3}, where="sources[0]")

    assert listed == ["motor"]
    assert isinstance(built, MotorSimulator)
    with pytest.raises(RegistryError, match=r"sources\[0\]\.params\.seed"):
        sources.build("motor", {"seed": "three"}, where="sources[0]")


def test_a_lazy_name_is_refused_twice_whichever_way_it_came() -> None:
    sources = Registry[Source]("source", group="tests.sources")
    sources.add("motor", MotorSimulator)
    sources.add_lazy("other", "no.such.module:Source")

    with pytest.raises(RegistryError, match="'motor' is registered twice"):
        sources.add_lazy("motor", "edgestack.sensing.motor:MotorSimulator")
    with pytest.raises(RegistryError, match=r"'other' is registered twice \(no.such.module"):
        sources.add("other", MotorSimulator)
    assert "no.such.module" not in sys.modules


def test_a_parameter_named_with_a_line_break_is_quoted_so_the_error_stays_one_line() -> None:
    with pytest.raises(RegistryError) as refused:
        STEPS.validate("clean", {"\n": 1}, where="steps[0]")

    assert str(refused.value).startswith("steps[0].params['\\n']: Extra inputs are not permitted")
    assert "\n" not in str(refused.value)
