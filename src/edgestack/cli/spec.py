"""`edgestack spec`: input specs written for you, their feature names derived from the
extractors, never typed."""

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml

from edgestack.cli.common import console, fail

__all__ = ["app", "new"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


@app.command()
def new(
    sensors: Annotated[str, typer.Option(help="The channels, in order, e.g. ax,ay,az.")],
    rate: Annotated[float, typer.Option(min=1e-6, help="Readings per second.")],
    window: Annotated[int, typer.Option(min=1, help="Readings a window.")],
    hop: Annotated[
        int | None, typer.Option(min=1, help="Readings between windows; --window by default.")
    ] = None,
    extractors: Annotated[
        str,
        typer.Option(
            help="Feature extractors by name, e.g. time_stats,band_energies, or raw to keep "
            "every reading of a window."
        ),
    ] = "time_stats,band_energies",
    out: Annotated[
        Path | None,
        typer.Option(help="The file to write, .json or .yaml; printed when left out."),
    ] = None,
) -> None:
    """Write an input spec: sensors, rate, windows and extractors, with the feature names the
    extractors give."""
    # Imported here: processing pulls in numerical libraries the other commands never need.
    from edgestack.processing import extractors_of, make_spec

    channels = _names(sensors)
    kinds = _names(extractors)
    if not channels:
        raise fail("--sensors: name at least one channel, e.g. --sensors ax,ay,az", 2)
    if len(set(channels)) != len(channels):
        raise fail(f"--sensors: {sensors!r} names a channel twice; name each once", 2)
    if not kinds:
        raise fail("--extractors: name at least one, e.g. --extractors time_stats", 2)
    try:
        spec = make_spec(
            channels, rate, window, hop or window, extractors=extractors_of(kinds, window)
        )
    except ValueError as exc:
        raise fail(f"--extractors: {exc}", 2) from None
    document = spec.model_dump(mode="json")
    yaml_out = out is not None and out.suffix.lower() in (".yaml", ".yml")
    text = (
        yaml.safe_dump(document, sort_keys=False)
        if yaml_out
        else json.dumps(document, indent=2) + "\n"
    )
    if out is None:
        print(text, end="")
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc}") from None
    console.print(
        f"{out}: {len(spec.features)} features of {len(channels)} channels, windows of "
        f"{spec.window} every {spec.hop} at {spec.rate_hz:g} Hz (spec {spec.fingerprint()})",
        highlight=False,
    )
