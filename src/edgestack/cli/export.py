"""`edgestack export`: a registered model as C for a microcontroller, through emlearn."""

import json
from pathlib import Path
from typing import Annotated

import typer

from edgestack.cli.common import (
    AdminOpt,
    HubOpt,
    JsonOpt,
    connect,
    console,
    fail,
    progress_steps,
    workflow,
)

__all__ = ["export"]

_TARGETS = ("c",)


def export(
    model: Annotated[str, typer.Argument(help="The registered model, as NAME or NAME@VERSION.")],
    out: Annotated[Path, typer.Option(help="The folder the C files are written into.")],
    target: Annotated[str, typer.Option(help="What to export to: c.")] = "c",
    register: Annotated[
        bool, typer.Option(help="Register the C as the model's next version (a C bundle).")
    ] = True,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a tree, forest or MLP and its window features as C (edgestack_model.h/.c,
    emlearn's headers and a main.c that runs it over standard input), checked with the host's
    C compiler to decide as the registered model does, measured against the mcu profile, and
    registered as a C bundle that deploys to mcu devices.

    The model is refitted from its lineage, as optimize does."""
    if target not in _TARGETS:
        raise fail(f"--target: {target!r} is not one of {', '.join(_TARGETS)}", 2)
    name, _, at = model.partition("@")
    if at and not (at.isdigit() and int(at) >= 1):
        raise fail(f"MODEL: {model!r}: give NAME or NAME@VERSION, a version from 1 up", 2)
    from edgestack.learning.workflow import export_model

    with (
        connect(hub, admin_token) as client,
        progress_steps(f"exporting {model} to C", as_json=as_json) as advance,
    ):
        exported = workflow(
            lambda: export_model(
                client,
                name,
                version=int(at) if at else None,
                out=out,
                register=register,
                progress=advance,
            )
        )
    size, done = exported.export.size, exported.export
    if as_json:
        summary = {
            "files": [str(p) for p in exported.written],
            "flash_bytes": size.flash,
            "ram_bytes": size.ram,
            "size": {"text": size.text, "data": size.data, "bss": size.bss, "stack": size.stack},
            "checked_rows": done.checked_rows,
            "checked_windows": done.checked_windows,
            "refusals": done.refusals,
            "registered": exported.model.model_dump(mode="json") if exported.model else None,
        }
        print(json.dumps(summary, indent=2))
    else:
        parent = exported.parent
        console.print(
            f"wrote {len(exported.written)} files of {parent.name} v{parent.version} into "
            f"{out}: flash {size.flash} B (text {size.text}, data {size.data}), RAM "
            f"{size.ram} B (data {size.data}, bss {size.bss}, stack {size.stack}); decides as "
            f"the registered model on {done.checked_rows} held-out rows and "
            f"{done.checked_windows} probe windows",
            highlight=False,
        )
        for why in done.refusals:
            console.print(f"[yellow]does not fit the mcu profile: {why}[/]")
        if exported.model is not None:
            console.print(
                f"registered {exported.model.name} v{exported.model.version} "
                f"({exported.model.digest[:12]}), a C bundle for mcu devices",
                highlight=False,
            )
    if done.refusals:
        raise typer.Exit(1)
