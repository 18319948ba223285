"""`edgestack rollout`: move a model version onto devices wave by wave, each wave running it
in shadow until its gate promotes it, rolls it back, or holds it for want of data."""

import re
import shlex
from typing import Annotated, Literal, cast

import typer
from typer.core import TyperGroup

from edgestack.cli.common import (
    AdminOpt,
    HubOpt,
    JsonOpt,
    Listing,
    call,
    choice,
    connect,
    console,
    emit,
    fail,
    print_json,
    request,
)
from edgestack.protocol import (
    Gate,
    GateReadings,
    RolloutPlan,
    RolloutRequest,
    RolloutState,
    RolloutView,
)

__all__ = ["app", "plan_of", "rollouts_listing", "waves_listing"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

RolloutIdArg = Annotated[
    int, typer.Argument(min=1, help="The rollout's id (see edgestack rollout list).")
]
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}


@app.command()
def start(
    model: Annotated[
        str, typer.Argument(help="MODEL or MODEL@VERSION; the latest when no version.")
    ],
    to: Annotated[
        list[str] | None,
        typer.Option(help="Devices: an id, tag:key=value, or all; repeat for several."),
    ] = None,
    all_devices: Annotated[bool, typer.Option("--all", help="Every enrolled device.")] = False,
    waves: Annotated[
        str, typer.Option(help="Each wave's cumulative share of the devices, sorted by id.")
    ] = "10%,50%,100%",
    shadow: Annotated[
        str, typer.Option(help="How long each wave runs the candidate in shadow: 90s, 2m, 1h.")
    ] = "60s",
    gate: Annotated[
        str,
        typer.Option(
            help="What a wave must show to be promoted, e.g. "
            "'agreement>=0.95,p99_ms<=20,error_rate<=0.01,drift_psi<=0.2'."
        ),
    ] = "",
    abort_failures: Annotated[
        str,
        typer.Option(help="Roll the wave back once more of its devices than this fail it."),
    ] = "10%",
    min_windows: Annotated[
        int, typer.Option(min=1, help="Windows each wave device must report before its gate.")
    ] = 100,
    force: Annotated[
        bool, typer.Option("--force", help="Roll out even where a device cannot run it.")
    ] = False,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a rollout: the first wave runs the candidate in shadow beside its bundle, and
    the hub moves on wave by wave as each gate holds. Every transition is an event."""
    name, _, version = model.partition("@")
    if version and not version.isdigit():
        raise fail(f"MODEL {model!r}: write the version as a number, as in motor@3", 2)
    plan = _plan(to, all_devices, waves, shadow, gate, abort_failures, min_windows)
    asked = request(
        RolloutRequest,
        **plan.model_dump(),
        model=name,
        version=int(version) if version else None,
        force=force,
    )
    with connect(hub, admin_token) as client:
        rollout = call(lambda: client.start_rollout(asked))
    if as_json:
        print_json(rollout)
        return
    console.print(
        f"rollout {rollout.id} started: {_candidate(rollout)} to "
        f"{len(rollout.previous)} devices in {len(rollout.waves)} waves; follow it with: "
        f"edgestack rollout show {rollout.id}",
        highlight=False,
    )


def plan_of(text: str, option: str = "--rollout") -> RolloutPlan:
    """A rollout plan written as `rollout start`'s options, as in '--to all --waves 50%,100%
    --shadow 30s --gate agreement>=0.9'; one that does not parse ends the command, naming
    `option`."""
    command = typer.main.get_command(app)
    assert isinstance(command, TyperGroup)  # an app of several commands
    try:
        parsed = command.commands["start"].make_context("start", ["MODEL", *shlex.split(text)])
    except (typer.TyperException, ValueError) as exc:  # an unknown option, an open quote
        raise fail(f"{option} {text!r}: {exc}", 2) from None
    given = parsed.params
    return _plan(
        list(given["to"]),
        given["all_devices"],
        given["waves"],
        given["shadow"],
        given["gate"],
        given["abort_failures"],
        given["min_windows"],
    )


def _plan(
    to: list[str] | None,
    all_devices: bool,
    waves: str,
    shadow: str,
    gate: str,
    abort_failures: str,
    min_windows: int,
) -> RolloutPlan:
    if bool(to) == all_devices:
        raise fail("give the devices with --to (repeat for several) or --all, one of them", 2)
    try:
        parsed_gate = Gate.parse(gate)
    except ValueError as exc:
        raise fail(f"--gate {gate!r}: {str(exc).removeprefix('gate: ')}", 2) from None
    return request(
        RolloutPlan,
        to=["all"] if all_devices else to,
        waves=[_share("--waves", part) for part in waves.split(",")],
        shadow_s=_duration(shadow),
        gate=parsed_gate,
        min_windows=min_windows,
        abort_failures=_share("--abort-failures", abort_failures),
    )


@app.command("list")
def list_rollouts(
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    state: Annotated[
        str | None, typer.Option(help="Only rollouts in this state: shadowing, held, ...")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="The newest this many.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List the newest rollouts, oldest of them first."""
    chosen = cast(RolloutState | None, choice("--state", state, RolloutState))
    with connect(hub, admin_token) as client:
        rows = call(lambda: client.rollouts(newest_first=True, state=chosen, limit=limit))
    rows.reverse()
    emit(rows, as_json, rollouts_listing(rows))


def rollouts_listing(rows: list[RolloutView]) -> Listing:
    """Rollouts as a table; when the terminal is narrow, the start time goes first."""
    cells = [
        [
            str(r.id),
            _candidate(r),
            r.state,
            f"{r.wave + 1}/{len(r.waves)}",
            str(len(r.previous)),
            str(r.request.gate) or "-",
            r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        ]
        for r in rows
    ]
    return Listing(
        ["id", "model", "state", "wave", "devices", "gate", "started"],
        cells,
        wrap=["gate"],
        hide_first=["started"],
    )


@app.command()
def show(
    rollout_id: RolloutIdArg,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a rollout: each wave's devices and state, its gate readings against the
    thresholds, and why it was promoted, held or rolled back."""
    with connect(hub, admin_token) as client:
        rollout = call(lambda: client.rollout(rollout_id))
    if as_json:
        print_json(rollout)
        return
    asked = rollout.request
    console.print(
        f"rollout {rollout.id}: {_candidate(rollout)} {rollout.state}, wave "
        f"{rollout.wave + 1} of {len(rollout.waves)}; {asked.shadow_s:g} s in shadow, "
        f"gate {str(asked.gate) or 'none'}, at least {asked.min_windows} windows a device",
        highlight=False,
    )
    console.print(waves_listing(rollout).render())


def waves_listing(rollout: RolloutView) -> Listing:
    """A rollout's waves: devices, state, each gate reading marked against its threshold,
    and the verdict; when the terminal is narrow, drift, errors and latency go first."""
    asked = rollout.request
    cells = [
        [
            str(i + 1),
            wave.state,
            ", ".join(wave.devices),
            *_readings(wave.readings, asked.gate),
            wave.verdict or "",
        ]
        for i, wave in enumerate(rollout.waves)
    ]
    return Listing(
        [
            "wave",
            "state",
            "devices",
            "windows",
            "accuracy",
            "agreement",
            "p99 ms",
            "errors",
            "psi",
            "why",
        ],
        cells,
        wrap=["devices", "why"],
        hide_first=["psi", "errors", "p99 ms", "accuracy"],
    )


def _steer(
    rollout_id: int,
    action: Literal["promote", "pause", "resume", "abort", "rollback"],
    hub: str | None,
    admin_token: str | None,
) -> None:
    with connect(hub, admin_token) as client:
        rollout = call(lambda: client.steer_rollout(rollout_id, action))
    console.print(
        f"rollout {rollout.id}: {rollout.state}, wave {rollout.wave + 1} of "
        f"{len(rollout.waves)} {rollout.waves[rollout.wave].state}",
        highlight=False,
    )


@app.command()
def promote(rollout_id: RolloutIdArg, hub: HubOpt = None, admin_token: AdminOpt = None) -> None:
    """Promote the current wave now, whatever its gate reads."""
    _steer(rollout_id, "promote", hub, admin_token)


@app.command()
def pause(rollout_id: RolloutIdArg, hub: HubOpt = None, admin_token: AdminOpt = None) -> None:
    """Stop judging the current wave; its devices stay in shadow."""
    _steer(rollout_id, "pause", hub, admin_token)


@app.command()
def resume(rollout_id: RolloutIdArg, hub: HubOpt = None, admin_token: AdminOpt = None) -> None:
    """Judge a paused rollout's wave again."""
    _steer(rollout_id, "resume", hub, admin_token)


@app.command()
def abort(rollout_id: RolloutIdArg, hub: HubOpt = None, admin_token: AdminOpt = None) -> None:
    """Stop the rollout; every device it touched goes back to its previous bundle."""
    _steer(rollout_id, "abort", hub, admin_token)


@app.command()
def rollback(rollout_id: RolloutIdArg, hub: HubOpt = None, admin_token: AdminOpt = None) -> None:
    """Put every device the rollout moved back on its previous bundle, even once completed."""
    _steer(rollout_id, "rollback", hub, admin_token)


def _candidate(rollout: RolloutView) -> str:
    return f"{rollout.candidate.name} v{rollout.candidate.version}"


def _readings(readings: GateReadings | None, gate: Gate) -> list[str]:
    """Each reading, marked against its threshold where the gate has one."""
    if readings is None:
        return ["-"] * 6
    shown = [str(readings.windows)]
    for name, floor in (
        ("accuracy", True),
        ("agreement", True),
        ("p99_ms", False),
        ("error_rate", False),
        ("drift_psi", False),
    ):
        value, threshold = getattr(readings, name), getattr(gate, name)
        if value is None:
            shown.append("-")
        elif threshold is None:
            shown.append(f"{value:.3g}")
        else:
            passes = value >= threshold if floor else value <= threshold
            shown.append(f"{value:.3g} {'ok' if passes else 'FAIL'}")
    return shown


def _share(option: str, text: str) -> float:
    """`10%` or `0.1` as 0.1."""
    value = text.strip()
    try:
        return float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        raise fail(f"{option} {text!r}: write a share as 10% or 0.1", 2) from None


def _duration(text: str) -> float:
    """`90s`, `2m`, `1h` or `90` in seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if match is None:
        raise fail(f"--shadow {text!r}: write a duration as 60s, 2m or 1h", 2)
    return float(match[1]) * _SECONDS[match[2]]
