"""Whatever an app spec holds, loading it ends in a valid app or one `AppSpecError`."""

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgestack.appspec import AppSpec, AppSpecError, parse_app_spec, parse_input_spec
from edgestack.processing import make_spec

BASE: dict[str, Any] = {
    "name": "fuzzed",
    "sources": [{"kind": "weather", "params": {"seed": 3}}],
    "window": 16,
    "hop": 8,
    "steps": [{"kind": "clean", "params": {"policy": "clip"}}],
    "extractors": [{"kind": "time_stats"}],
    "model": {"name": "storms", "preprocess": [{"kind": "standardise"}]},
    "rules": {"trigger_windows": 2},
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
fields = st.sampled_from(
    [*BASE, "align_hz", "sinks", "version", "sources.0.kind", "sources.0.params.seed",
     "sources.0.params.rate_hz", "steps.0.params", "extractors.0.channels",
     "rules.min_confidence", "model.preprocess.0.kind"]
)  # fmt: skip


def _set(spec: Any, path: str, value: Any) -> None:
    """Set the field at `path`, unless an earlier change replaced what holds it."""
    *parents, last = path.split(".")
    for key in parents:
        if isinstance(spec, list) and spec:
            spec = spec[0]
        elif isinstance(spec, dict) and key in spec:
            spec = spec[key]
        else:
            return
    if isinstance(spec, list) and spec:
        spec[0] = value
    elif isinstance(spec, dict):
        spec[last] = value


def _outcome(text: str) -> AppSpec | None:
    try:
        return parse_app_spec(text, origin="fuzzed.yaml")
    except AppSpecError as exc:
        assert str(exc).startswith("fuzzed.yaml: "), exc
        assert "\n" not in str(exc), exc
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(fields, values), min_size=1, max_size=4))
def test_a_spec_with_any_field_changed_loads_or_names_what_is_wrong(
    changes: list[tuple[str, Any]],
) -> None:
    spec = yaml.safe_load(yaml.safe_dump(BASE))
    for path, value in changes:
        _set(spec, path, value)

    _outcome(yaml.safe_dump(spec))


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=200), values.map(yaml.safe_dump)))
def test_any_text_loads_or_names_what_is_wrong(text: str) -> None:
    _outcome(text)


sizes = st.one_of(st.integers(1, 256), st.integers(10**8, 10**13))


@settings(max_examples=40, deadline=None)
@given(window=sizes, hop=sizes, rate=st.one_of(st.floats(1, 100), st.floats(1e9, 1e15)))
def test_a_spec_that_loads_starts_or_names_what_is_impossible(
    window: int, hop: int, rate: float
) -> None:
    spec = {**BASE, "window": window, "hop": hop, "align_hz": rate}
    spec["sources"] = [*BASE["sources"], {"kind": "light", "params": {"seed": 1}}]
    app = _outcome(yaml.safe_dump(spec))
    assert app is not None

    try:
        input_spec = app.input_spec(app.source())
    except AppSpecError as exc:
        assert str(exc).startswith("fuzzed: "), exc
        assert "\n" not in str(exc), exc
        assert max(window, hop) >= 10**8 or rate >= 1e9
    else:
        assert (input_spec.window, input_spec.hop) == (window, hop)
        assert max(window, hop) < 10**8 and rate < 1e9


INPUT: dict[str, Any] = {
    "sensors": ["ax", "ay"],
    "rate_hz": 100.0,
    "window": 16,
    "hop": 8,
    "extractors": [{"kind": "time_stats"}, {"kind": "raw", "params": {"size": 16}}],
}
input_fields = st.sampled_from(
    [*INPUT, "features", "steps", "extractors.0.kind", "extractors.0.params",
     "extractors.0.channels", "extractors.0.params.size", "sensors.0"]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(input_fields, values), min_size=1, max_size=4))
def test_an_input_spec_with_any_field_changed_loads_or_names_what_is_wrong(
    changes: list[tuple[str, Any]],
) -> None:
    spec = yaml.safe_load(yaml.safe_dump(INPUT))
    for path, value in changes:
        _set(spec, path, value)

    try:
        loaded = parse_input_spec(yaml.safe_dump(spec), origin="fuzzed.yaml")
    except AppSpecError as exc:
        assert str(exc).startswith("fuzzed.yaml: "), exc
        return
    assert (
        loaded.features
        == make_spec(
            loaded.sensors,
            loaded.rate_hz,
            loaded.window,
            loaded.hop,
            loaded.steps,
            loaded.extractors,
        ).features
    )
