"""Named extension points: sources, processing steps, feature extractors, row transforms.

Built-ins register themselves here at import; third-party ones are loaded explicitly from an
entry-point group at start-up, through the same `add`, so both meet the same checks. A class
from a heavy library is registered by its import path (`add_lazy`) and loaded when first used.

    STEPS = Registry[Step]("step", group="edgestack.steps")

    @STEPS.register("lowpass")
    class LowPass: ...

    step = STEPS.build("lowpass", {"cutoff_hz": 50}, where="steps[0]")
    # a bad value fails as "steps[0].params.cutoff_hz: ...", a bad name as "steps[0].kind: ..."
"""

import importlib
import inspect
import typing
import warnings
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

__all__ = ["Registry", "RegistryError", "field_path"]

T = TypeVar("T")
C = TypeVar("C", bound=type)


class RegistryError(ValueError):
    """An unknown name, a name registered twice, or parameters that do not fit; says which."""


class Registry(Generic[T]):
    """Names to classes of one kind; refuses duplicates; builds from validated parameters.

    A registered class takes its parameters as typed keyword arguments of `__init__`
    (`Annotated[float, Field(gt=0)]` for constraints); `build` validates a mapping of them
    and names the bad field in its error.
    """

    def __init__(self, kind: str, *, group: str) -> None:
        self.kind = kind
        self.group = group
        self._classes: dict[str, type] = {}
        self._params: dict[str, type[BaseModel]] = {}
        self._lazy: dict[str, str] = {}

    def register(self, name: str) -> Callable[[C], C]:
        def decorate(cls: C) -> C:
            self.add(name, cls)
            return cls

        return decorate

    def add(self, name: str, cls: type) -> None:
        self._refuse_twice(name, cls.__qualname__)
        self._classes[name] = cls
        self._params[name] = _params_model(cls)

    def add_lazy(self, name: str, path: str) -> None:
        """Register the class at `path`, `"module:attribute"`, importing it when first used: a
        process that never uses it never pays for its library."""
        self._refuse_twice(name, path)
        self._lazy[name] = path

    def _refuse_twice(self, name: str, what: str) -> None:
        if name in self._classes or name in self._lazy:
            first = self._classes[name].__qualname__ if name in self._classes else self._lazy[name]
            raise RegistryError(
                f"{self.kind} {name!r} is registered twice ({first} and {what}); "
                "give the second one another name"
            )

    def names(self) -> list[str]:
        return sorted([*self._classes, *self._lazy])

    def get(self, name: str, *, where: str = "") -> type[T]:
        """The class registered as `name`; `where` is the stage's path in a spec, for errors."""
        if name in self._lazy:
            module, attribute = self._lazy[name].split(":")
            cls = getattr(importlib.import_module(module), attribute)
            del self._lazy[name]
            self.add(name, cls)
        try:
            return self._classes[name]
        except KeyError:
            prefix = f"{where}.kind: " if where else ""
            raise RegistryError(
                f"{prefix}unknown {self.kind} {name!r}; known: {', '.join(self.names())}"
            ) from None

    def params(self, name: str, *, where: str = "") -> type[BaseModel]:
        """The pydantic model of `name`'s parameters, for validation and documentation."""
        self.get(name, where=where)
        return self._params[name]

    def validate(self, name: str, params: Mapping[str, Any], *, where: str = "") -> dict[str, Any]:
        """The parameters, validated and with defaults filled; `RegistryError` naming the field
        as `<where>.params.<field>`."""
        model = self.params(name, where=where)
        try:
            return dict(model.model_validate(dict(params)))
        except ValidationError as exc:
            first = exc.errors()[0]
            path = field_path([*([f"{where}.params"] if where else []), *first["loc"]])
            expected = ", ".join(model.model_fields) or "no parameters"
            raise RegistryError(
                f"{path or self.kind}: {first['msg']} ({self.kind} {name!r} takes: {expected})"
            ) from None

    def build(self, name: str, params: Mapping[str, Any] | None = None, *, where: str = "") -> T:
        """An instance of `name` from validated parameters."""
        cls = self.get(name, where=where)
        instance: T = cls(**self.validate(name, params or {}, where=where))
        return instance

    def load_entry_points(self) -> list[str]:
        """Register every class in this registry's entry-point group; return their names."""
        loaded = []
        for point in entry_points(group=self.group):
            self.add(point.name, point.load())
            loaded.append(point.name)
        return loaded


def field_path(parts: Iterable[int | str]) -> str:
    """Where a value sits, on one line: `steps[0].params.cutoff_hz`. A key with spaces, line
    breaks or nothing in it is quoted, so a path made of any input stays one line."""
    return "".join(_path_part(part) for part in parts).lstrip(".")


def _path_part(part: int | str) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    plain = part and part.isprintable() and not any(c.isspace() for c in part)
    return f".{part}" if plain else f"[{part!r}]"


def _params_model(cls: type) -> type[BaseModel]:
    init = next(vars(k)["__init__"] for k in cls.__mro__ if "__init__" in vars(k))
    hints = typing.get_type_hints(init, include_extras=True)
    fields: dict[str, Any] = {}
    for name, parameter in inspect.signature(cls).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[name] = (hints.get(name, Any), default)
    with warnings.catch_warnings():
        # scikit-learn transformers take `copy`, which shadows a BaseModel method; validation reads
        # fields, not methods, so the shadowing is harmless.
        warnings.filterwarnings("ignore", "Field name .* shadows an attribute", UserWarning)
        return create_model(
            f"{cls.__name__}Params",
            __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
            **fields,
        )
