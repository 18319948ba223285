"""`edgestack split`: a multi-exit net cut between a device and a server where its expected
latency per window is least, registered as the device's head and the server's tail."""

import json
from dataclasses import asdict
from typing import Annotated

import typer

from edgestack.cli.common import (
    AdminOpt,
    HubOpt,
    JsonOpt,
    connect,
    console,
    fail,
    name_at,
    progress_steps,
    workflow,
)
from edgestack.profiles import PROFILES

__all__ = ["split"]


def split(
    model: Annotated[
        str,
        typer.Argument(help="A model trained with cnn1d_exits, MODEL or MODEL@VERSION (latest)."),
    ],
    profile: Annotated[str, typer.Option(help="The device profile that runs the head.")],
    server_profile: Annotated[
        str, typer.Option(help="The profile of the server that runs the tail.")
    ] = "cloud",
    bandwidth: Annotated[
        float, typer.Option(min=0.001, help="The uplink, in kB/s (1 kB = 1000 bytes).")
    ] = 250.0,
    rtt: Annotated[float, typer.Option(min=0, help="The link's round trip, in ms.")] = 30.0,
    threshold: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="The exit confidence from which the device answers."),
    ] = None,
    exit_share: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            max=1,
            help="The share of held-out windows the exit answers; sets the threshold.",
        ),
    ] = None,
    int8: Annotated[
        bool, typer.Option(help="Send the intermediate tensor as int8, a quarter of the bytes.")
    ] = False,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Choose where to cut the net from each block's latency on this machine scaled by the
    profiles, the link and the share of windows its exit answers (0.9 confidence unless
    --threshold or --exit-share says), then register the head as MODEL's next version and
    the tail as MODEL-tail. Deploy the head to devices and name the tail in their offload
    policy. The net is refitted from its lineage, as optimize does."""
    named, version = name_at(model, None, "MODEL", "MODEL")
    for option, name in (("--profile", profile), ("--server-profile", server_profile)):
        if name not in PROFILES:
            raise fail(f"{option}: {name!r} is no device profile; give {', '.join(PROFILES)}", 2)
    if threshold is not None and exit_share is not None:
        raise fail("--exit-share: sets the threshold; give it or --threshold, not both", 2)
    # Imported here: measuring pulls in numerical libraries the other commands never need.
    from edgestack.learning.split import Link
    from edgestack.learning.workflow import split_model

    assert named is not None  # a required argument
    with (
        connect(hub, admin_token) as client,
        progress_steps(f"splitting {model}", as_json=as_json) as advance,
    ):
        cut = workflow(
            lambda: split_model(
                client,
                named,
                version,
                profile=profile,
                server_profile=server_profile,
                link=Link(bandwidth_bytes_per_s=bandwidth * 1000, rtt_ms=rtt),
                threshold=0.9 if threshold is None and exit_share is None else threshold,
                exit_share=exit_share,
                int8=int8,
                progress=advance,
            )
        )
    plan = cut.plan
    if as_json:
        summary = {
            "parent": cut.parent.model_dump(mode="json"),
            "plan": plan.model_dump(mode="json"),
            "head": cut.head.model_dump(mode="json") if cut.head else None,
            "tail": cut.tail.model_dump(mode="json") if cut.tail else None,
            "link": asdict(Link(bandwidth * 1000, rtt)),
        }
        print(json.dumps(summary, indent=2))
        return
    where = {0: "all on the server", plan.blocks: "all on the device"}.get(
        plan.at, f"after {plan.point}, {plan.at} of {plan.blocks} blocks on the device"
    )
    console.print(
        f"{cut.parent.name} v{cut.parent.version} split {where}: {plan.expected_ms:.2f} ms "
        f"expected per window on {profile} and {server_profile} over {bandwidth:g} kB/s, "
        f"{rtt:g} ms; the exit answers {plan.early_share:.0%} of held-out windows from "
        f"confidence {plan.threshold:.3f}, the others send {plan.offload_bytes} B each",
        highlight=False,
    )
    for side, registered in (
        ("head, for the device", cut.head),
        ("tail, for the server", cut.tail),
    ):
        if registered is not None:
            console.print(
                f"registered {registered.name} v{registered.version} ({registered.digest[:12]}), "
                f"the {side}",
                highlight=False,
            )
