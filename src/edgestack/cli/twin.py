"""`edgestack devices set|inject` and `edgestack undeploy`: a device's twin changed through
the hub's API, never by hand-written requests. Agents converge to what is set."""

from typing import Annotated

import typer
from pydantic import ValidationError

from edgestack.cli.common import AdminOpt, HubOpt, call, connect, console, fail, request
from edgestack.protocol import (
    DesiredPatch,
    DeviceChoice,
    DeviceView,
    FaultInjection,
    RuleParams,
)

__all__ = ["inject", "set_device", "start", "stop", "undeploy"]

DeviceArg = Annotated[str, typer.Argument(help="The device's id.")]


def set_device(
    device_id: DeviceArg,
    rule: Annotated[
        list[str] | None,
        typer.Option(
            help="An alarm rule parameter, KEY=VALUE: normal_label, min_confidence, "
            "trigger_windows, clear_windows; repeat for several. The others stay as they apply."
        ),
    ] = None,
    app_rules: Annotated[
        bool, typer.Option("--app-rules", help="Go back to the rules the device's app sets.")
    ] = False,
    telemetry_interval: Annotated[
        float | None, typer.Option(help="Seconds between telemetry batches (0.2 to 3600).")
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="The device profile to check deployments against.")
    ] = None,
    hardware_profile: Annotated[
        bool,
        typer.Option("--hardware-profile", help="Go back to the profile its hardware gives."),
    ] = False,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Change a device's alarm rules, telemetry interval or profile; what is not given stays."""
    if rule and app_rules:
        raise fail("--rule and --app-rules: give rules to set, or go back to the app's", 2)
    if profile is not None and hardware_profile:
        raise fail("--profile and --hardware-profile: give one of them", 2)
    changes: dict[str, object] = {}
    with connect(hub, admin_token) as client:
        if rule:
            changes["rules"] = _rules(rule, call(lambda: client.device(device_id)))
        if app_rules:
            changes["rules"] = None
        if telemetry_interval is not None:
            changes["telemetry_interval_s"] = telemetry_interval
        if profile is not None or hardware_profile:
            changes["profile"] = profile
        if not changes:
            raise fail("nothing to set: give --rule, --app-rules, --telemetry-interval or "
                       "--profile", 2)  # fmt: skip
        patch = _patch(changes)
        state = call(lambda: client.update_desired(device_id, patch))
    console.print(
        f"{device_id} desired state v{state.version}: "
        + ", ".join(f"{k} {_said(getattr(state, k))}" for k in sorted(changes)),
        highlight=False,
    )


def inject(
    device_id: DeviceArg,
    kind: Annotated[
        str, typer.Argument(help="The fault (the simulated source's kinds); normal to clear.")
    ],
    severity: Annotated[float, typer.Option(help="How strong, 0 to 10.")] = 1.0,
    noise: Annotated[
        float, typer.Option(help="Vibration around a simulated machine, a multiple of its own.")
    ] = 1.0,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Give a device's simulated source a fault (real sources say they cannot); `normal`
    with no --noise clears it."""
    fault = (
        None
        if kind == "normal" and noise == 1.0
        else request(FaultInjection, kind=kind, severity=severity, noise=noise)
    )
    with connect(hub, admin_token) as client:
        state = call(lambda: client.update_desired(device_id, DesiredPatch(fault=fault)))
    said = "cleared" if fault is None else f"{fault.kind} (severity {fault.severity:g}"
    said += "" if fault is None else f", noise {fault.noise:g})"
    console.print(f"{device_id} desired state v{state.version}: fault {said}", highlight=False)


def stop(device_id: DeviceArg, hub: HubOpt = None, admin_token: AdminOpt = None) -> None:
    """Stop a device's app: it reads no source and runs no model, and keeps reporting."""
    _run(device_id, stopped=True, hub=hub, admin_token=admin_token)


def start(device_id: DeviceArg, hub: HubOpt = None, admin_token: AdminOpt = None) -> None:
    """Start a stopped device's app again."""
    _run(device_id, stopped=False, hub=hub, admin_token=admin_token)


def _run(device_id: str, *, stopped: bool, hub: str | None, admin_token: str | None) -> None:
    with connect(hub, admin_token) as client:
        state = call(lambda: client.update_desired(device_id, DesiredPatch(stopped=stopped)))
    said = "stopped" if stopped else "started"
    console.print(f"{device_id} desired state v{state.version}: app {said}", highlight=False)


def undeploy(
    device: Annotated[
        list[str] | None, typer.Option(help="A device to undeploy; repeat for several.")
    ] = None,
    to: Annotated[
        list[str] | None,
        typer.Option(help="Devices: an id, tag:key=value, or all; repeat for several."),
    ] = None,
    all_devices: Annotated[bool, typer.Option("--all", help="Every enrolled device.")] = False,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Have devices run no model; they keep sensing, collecting and reporting. Refused while
    a rollout holds one of them."""
    try:
        choice = DeviceChoice(devices=device, to=to, all=all_devices)
    except ValidationError as exc:
        error = exc.errors()[0]
        option = "--device" if error["loc"][0] == "devices" else "--to"
        raise fail(f"{option} {error['input']!r}: {error['msg']}", 2) from None
    with connect(hub, admin_token) as client:
        result = call(lambda: client.undeploy(choice))
    console.print(f"no model desired on {', '.join(result.devices)}", highlight=False)


def _rules(given: list[str], view: DeviceView) -> RuleParams:
    """The rules that apply now on the device, with the KEY=VALUE pairs `given` set."""
    now = view.desired.rules or (view.reported.rules if view.reported else None) or RuleParams()
    values = now.model_dump()
    for item in given:
        key, sign, value = item.partition("=")
        if not sign or key not in RuleParams.model_fields:
            raise fail(
                f"--rule {item!r}: write KEY=VALUE with KEY one of "
                f"{', '.join(RuleParams.model_fields)}",
                2,
            )
        values[key] = value
    try:
        return RuleParams.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = str(error["loc"][0])
        raise fail(f"--rule {key}={values[key]}: {error['msg']}", 2) from None


def _patch(changes: dict[str, object]) -> DesiredPatch:
    try:
        return DesiredPatch.model_validate(changes)
    except ValidationError as exc:
        error = exc.errors()[0]
        option = {"telemetry_interval_s": "--telemetry-interval"}.get(
            str(error["loc"][0]), f"--{error['loc'][0]}"
        )
        raise fail(f"{option} {error['input']!r}: {error['msg']}", 2) from None


def _said(value: object) -> str:
    if value is None:
        return "as the device's own"
    if isinstance(value, RuleParams):
        return " ".join(f"{k}={v}" for k, v in value.model_dump().items())
    return str(value)
