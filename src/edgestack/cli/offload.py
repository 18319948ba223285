"""`edgestack offload set|clear`: a device's joint inference, its threshold calibrated here on
the held-out windows of the model the device runs."""

from typing import Annotated

import typer

from edgestack.cli.common import AdminOpt, HubOpt, call, connect, console, fail, request, workflow
from edgestack.protocol import BundleRef, DesiredPatch, OffloadGate, OffloadPolicy, ServingTier

__all__ = ["app"]

app = typer.Typer(help="Send a device's hard windows to a bigger model on an edge node or the hub.")

DeviceArg = Annotated[str, typer.Argument(help="The device's id.")]


@app.command("set")
def set_offload(
    device_id: DeviceArg,
    model: Annotated[
        str, typer.Argument(help="The bigger registered model, MODEL or MODEL@VERSION (latest).")
    ],
    gate: Annotated[
        OffloadGate, typer.Option(help="How a window's hardness is scored from its probabilities.")
    ] = "confidence",
    fraction: Annotated[
        float,
        typer.Option(help="The share of held-out windows to offload; calibrates the threshold."),
    ] = 0.1,
    threshold: Annotated[
        float | None,
        typer.Option(help="The gate score from which a window goes, 0 to 1; skips calibration."),
    ] = None,
    tier: Annotated[ServingTier, typer.Option(help="edge: an edge node; cloud: the hub.")] = "edge",
    server: Annotated[
        str | None, typer.Option(help="The edge node, http://host:port (its --serve-port).")
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for an answer before the device's own counts.")
    ] = 1.0,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Offload a device's hard windows. Without --threshold, the threshold is the one that
    sends --fraction of the held-out windows (the test split of its training data) of the
    model the device is to run, scored by --gate."""
    name, _, at = model.partition("@")
    if at and not at.isdigit():
        raise fail(f"MODEL {model!r}: write MODEL or MODEL@VERSION, VERSION a number", 2)
    with connect(hub, admin_token) as client:
        versions = [m for m in call(client.models) if m.name == name]
        chosen = [m for m in versions if not at or m.version == int(at)]
        if not chosen:
            raise fail(f"MODEL {model!r}: no such registered model; see edgestack models", 2)
        big = max(chosen, key=lambda m: m.version)
        policy = request(
            OffloadPolicy,
            model=BundleRef(name=big.name, version=big.version, digest=big.digest),
            gate=gate,
            target_fraction=fraction,
            threshold=threshold,
            tier=tier,
            server=server,
            timeout_s=timeout,
        )
        if threshold is None:
            own = call(lambda: client.device(device_id)).desired.bundle
            if own is None:
                raise fail(
                    f"{device_id} is to run no model, whose windows would be scored; deploy "
                    "one first, or give --threshold",
                    2,
                )
            # Imported here: scoring pulls in numerical libraries the other commands never need.
            from edgestack.learning.workflow import held_out_probabilities
            from edgestack.offload import calibrated

            policy = calibrated(policy, workflow(lambda: held_out_probabilities(client, own)))
        state = call(lambda: client.update_desired(device_id, DesiredPatch(offload=policy)))
    assert state.offload is not None  # just set
    console.print(
        f"{device_id} desired state v{state.version}: windows whose {gate} reaches "
        f"{state.offload.threshold:.4f} go to {big.name} v{big.version} on "
        f"{server or 'the hub'}",
        highlight=False,
    )


@app.command("clear")
def clear_offload(device_id: DeviceArg, hub: HubOpt = None, admin_token: AdminOpt = None) -> None:
    """Have a device answer every window alone again."""
    with connect(hub, admin_token) as client:
        state = call(lambda: client.update_desired(device_id, DesiredPatch(offload=None)))
    console.print(f"{device_id} desired state v{state.version}: no offloading", highlight=False)
