"""`edgestack tradeoff`: what each way of sharing inference between a device and the cloud
tier costs and gains, measured on a model's held-out windows."""

import json
from typing import Annotated, get_args

import typer
from rich.table import Table

from edgestack.cli.common import (
    AdminOpt,
    HubOpt,
    JobOpt,
    JsonOpt,
    connect,
    console,
    fail,
    name_at,
    request,
    workflow,
)
from edgestack.cli.jobs import submit
from edgestack.protocol import OffloadGate, TradeoffRequest

__all__ = ["tradeoff"]

_GATES = get_args(OffloadGate)


def tradeoff(
    model: Annotated[
        str, typer.Argument(help="The device's model, MODEL or MODEL@VERSION (the latest).")
    ],
    device: Annotated[
        str, typer.Option("--device", help="The device whose profile the model runs on.")
    ],
    cloud: Annotated[
        str | None,
        typer.Option(
            "--cloud",
            help="The server's model, MODEL or MODEL@VERSION; the one the device's offload "
            "policy names when left out.",
        ),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split",
            help="A split net's head, MODEL or MODEL@VERSION, as edgestack split registered it: "
            "adds its row, the tail on the cloud tier.",
        ),
    ] = None,
    bandwidth: Annotated[
        float, typer.Option(min=1, help="The uplink, in kB/s (1 kB = 1000 bytes).")
    ] = 250.0,
    rtt: Annotated[float, typer.Option(min=0, help="The link's round trip, in ms.")] = 30.0,
    fractions: Annotated[
        str, typer.Option(help="Offload fractions of joint inference, comma-separated.")
    ] = "0.05,0.1,0.2,0.5",
    gate: Annotated[str, typer.Option(help=f"How hard a window is: {', '.join(_GATES)}.")] = (
        "confidence"
    ),
    job: JobOpt = False,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Accuracy, latency, uplink bytes and the device's energy per window for the device
    alone, joint inference at each offload fraction (the threshold calibrated on half the
    held-out windows, measured on the other half), a split net with --split, and the cloud
    tier alone."""
    named, version = name_at(model, None, "MODEL", "--version")
    server, server_version = name_at(cloud, None, "--cloud", "--cloud")
    head, head_version = name_at(split, None, "--split", "--split")
    shares = _fractions(fractions)
    if gate not in _GATES:
        raise fail(f"--gate: '{gate}' is no gate; choose {', '.join(_GATES)}", 2)
    if job:
        asked = request(
            TradeoffRequest,
            model=named,
            version=version,
            device=device,
            cloud=server,
            cloud_version=server_version,
            bandwidth_kb_s=bandwidth,
            rtt_ms=rtt,
            fractions=list(shares),
            gate=gate,
            split=head,
            split_version=head_version,
        )
        submit(hub, admin_token, asked, as_json)
        return
    # Imported here: measuring pulls in numerical libraries the other commands never need.
    from edgestack.learning.split import Link
    from edgestack.learning.tradeoff import Energy
    from edgestack.learning.workflow import tradeoff_model

    assert named is not None  # a required argument
    link = Link(bandwidth_bytes_per_s=bandwidth * 1000, rtt_ms=rtt)
    with connect(hub, admin_token) as client:
        traded = workflow(
            lambda: tradeoff_model(
                client,
                named,
                version,
                device,
                cloud=server,
                cloud_version=server_version,
                link=link,
                fractions=shares,
                gate=gate,  # type: ignore[arg-type]  # one of _GATES, checked above
                split=head,
                split_version=head_version,
            )
        )
    if as_json:
        print(json.dumps(traded.summary(), indent=2))
        return
    title = (
        f"{traded.model.name} v{traded.model.version} on {device} ({traded.profile}), "
        f"{traded.cloud.name} v{traded.cloud.version} on the cloud tier; {traded.dataset} "
        f"v{traded.dataset_version}, {traded.rows} held-out rows; {bandwidth:g} kB/s, {rtt:g} ms"
    )
    table = Table(
        "policy", "accuracy", "offloaded", "latency ms", "uplink B", "energy mJ", title=title
    )
    for c in traded.choices:
        table.add_row(
            c.policy,
            f"{c.accuracy:.4f}",
            f"{c.offload_fraction:.0%}",
            f"{c.latency_ms:.2f}",
            f"{c.uplink_bytes:.0f}",
            f"{c.energy_mj:.3f}",
        )
    console.print(table)
    energy = Energy()
    console.print(
        f"per window; energy is the device's: its compute at {energy.device_w:g} W and "
        f"{energy.radio_nj_per_byte:g} nJ per byte it sends"
    )


def _fractions(text: str) -> tuple[float, ...]:
    try:
        shares = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        message = f"--fractions: '{text}' is no list of numbers; give e.g. 0.05,0.1,0.2"
        raise fail(message, 2) from None
    for share in shares:
        if not 0 < share <= 1:
            raise fail(f"--fractions: {share} is no share of windows; give each in (0, 1]", 2)
    return shares
