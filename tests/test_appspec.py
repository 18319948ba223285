from pathlib import Path

import pytest

from edgestack.appspec import AppSpecError, load_app_spec, motor_app, parse_app_spec
from edgestack.processing import FeaturePipeline, vibration_spec

GOOD = """
name: weather-watch
sources:
  - kind: weather
    params: {seed: 3}
window: 16
hop: 8
steps:
  - {kind: clean, params: {policy: clip}}
extractors:
  - {kind: time_stats}
model:
  name: storms
  preprocess: [{kind: standardise}]
rules: {trigger_windows: 2}
sinks:
  - {kind: jsonl, params: {path: events.jsonl}}
"""


def test_a_good_spec_builds_its_sources_and_an_input_spec_the_pipeline_runs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(GOOD)

    app = load_app_spec(path)
    source = app.source()
    spec = app.input_spec(source)
    rows = FeaturePipeline(spec).push(source.read(64))

    assert app.rules.trigger_windows == 2
    assert spec.sensors == list(source.channels)
    assert spec.rate_hz == source.rate_hz
    assert rows.shape == ((64 - 16) // 8 + 1, len(spec.features))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("kind: weather", "kind: wether"), "sources[0].kind: unknown source 'wether'"),
        (("seed: 3", "seed: three"), "sources[0].params.seed: Input should be a valid integer"),
        (("window: 16", "window: 0"), "window: Input should be greater than or equal to 1"),
        (("policy: clip", "polcy: clip"), "steps[0].params.polcy"),
        (("kind: time_stats", "kind: nope"), "extractors[0].kind: unknown feature extractor"),
        (("kind: standardise", "kind: nope"), "model.preprocess[0].kind: unknown row transform"),
        (("kind: jsonl", "kind: carrier_pigeon"), "sinks[0].kind: unknown sink"),
        (("hop: 8", "hop: 8\ncolour: blue"), "colour: unknown field"),
        (("name: weather-watch", "name: Weather Watch"), "name: String should match pattern"),
    ],
)
def test_a_wrong_spec_fails_at_load_naming_the_field(
    change: tuple[str, str], expected: str
) -> None:
    text = GOOD.replace(*change, 1)
    assert text != GOOD

    with pytest.raises(AppSpecError) as caught:
        parse_app_spec(text, origin="app.yaml")

    assert str(caught.value).startswith("app.yaml: ")
    assert expected in str(caught.value)


def test_broken_yaml_names_the_line() -> None:
    with pytest.raises(AppSpecError, match=r"app.yaml: line 3, column \d+: not valid YAML"):
        parse_app_spec("name: x\nwindow: 16\nhop: 8: 9\n", origin="app.yaml")


def test_an_extractor_on_a_channel_the_sources_lack_fails_naming_it() -> None:
    app = parse_app_spec(GOOD.replace("{kind: time_stats}", "{kind: mean, channels: [nope]}"))

    with pytest.raises(AppSpecError, match="nope"):
        app.input_spec(app.source())


def test_several_sources_need_a_rate_to_align_at() -> None:
    two = GOOD.replace(
        "params: {seed: 3}", "params: {seed: 3}\n  - {kind: motor, params: {seed: 1}}"
    )

    with pytest.raises(AppSpecError, match="align_hz"):
        parse_app_spec(two)


def test_the_built_in_motor_app_extracts_the_vibration_features() -> None:
    app = motor_app(seed=1)

    assert app.input_spec(app.source()) == vibration_spec()


def test_a_step_that_cannot_run_on_the_sources_stream_fails_at_load() -> None:
    app = parse_app_spec(
        GOOD.replace(
            "{kind: clean, params: {policy: clip}}",
            "{kind: lowpass, params: {cutoff_hz: 5000}}",
        )
    )

    with pytest.raises(AppSpecError, match="cutoff"):
        app.input_spec(app.source())


def test_a_sink_path_that_cannot_be_written_fails_naming_the_sink(tmp_path: Path) -> None:
    # A path under a regular file cannot be created, whoever runs the test.
    (tmp_path / "file").write_text("")
    bad = tmp_path / "file" / "events.jsonl"
    app = parse_app_spec(GOOD.replace("path: events.jsonl", f"path: {bad}"))

    with pytest.raises(AppSpecError) as caught:
        app.build_sinks()

    assert str(caught.value).startswith(f"weather-watch: sinks[0]: path: cannot write {bad}")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ([("window: 16", "window: 5000000000")], "window: windows of 5000000000 samples"),
        ([("hop: 8", "hop: 5000000000")], "hop: windows of 16 samples every 5000000000"),
        (
            [
                ("params: {seed: 3}", "params: {seed: 3}\n  - {kind: light, params: {seed: 4}}"),
                ("hop: 8", "hop: 8\nalign_hz: 1000000000000"),
            ],
            "align_hz: 1e+12 Hz",
        ),
    ],
)
def test_a_spec_needing_absurd_memory_is_refused_before_it_takes_any(
    changes: list[tuple[str, str]], field: str
) -> None:
    text = GOOD
    for change in changes:
        text = text.replace(*change, 1)
    app = parse_app_spec(text)

    with pytest.raises(AppSpecError) as caught:
        app.input_spec(app.source())

    assert f"weather-watch: {field}" in str(caught.value)
    assert "an app may hold" in str(caught.value)


def test_sources_whose_channels_clash_fail_naming_them() -> None:
    two = GOOD.replace(
        "params: {seed: 3}", "params: {seed: 3}\n  - {kind: weather, params: {seed: 4}}"
    )
    app = parse_app_spec(two.replace("hop: 8", "hop: 8\nalign_hz: 1"))

    with pytest.raises(AppSpecError, match=r"weather-watch: sources: channels: .*temperature"):
        app.source()


def test_a_source_rate_needing_absurd_memory_names_the_sources_rate() -> None:
    app = parse_app_spec(
        GOOD.replace(
            "{seed: 3}",
            '{topics: {"plant/press": [level]}, port: 1, rate_hz: 1000000000000}',
        ).replace("kind: weather", "kind: mqtt")
    )
    source = app.source()

    try:
        with pytest.raises(AppSpecError) as caught:
            app.input_spec(source)
    finally:
        source.close()

    assert "weather-watch: sources[0].params.rate_hz: 1e+12 Hz of 1 channel would take" in str(
        caught.value
    )
