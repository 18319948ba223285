"""`edgestack policy`: what the hub does on its own when devices drift, and its runs."""

from typing import Annotated

import typer

from edgestack.cli.common import (
    AdminOpt,
    HubOpt,
    JsonOpt,
    Listing,
    call,
    connect,
    console,
    emit,
    print_json,
    request,
)
from edgestack.cli.rollouts import plan_of
from edgestack.protocol import (
    MAX_REVIEW_WINDOWS,
    PolicyName,
    PolicyRunView,
    PolicyTrigger,
    PolicyView,
    RetrainPolicy,
)

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

NameArg = Annotated[PolicyName, typer.Argument(help="The policy: retrain-on-drift.")]


@app.command("set")
def set_policy(
    name: NameArg,
    dataset: Annotated[
        str, typer.Option(help="The dataset labelled windows join and it trains on.")
    ],
    model: Annotated[str, typer.Option(help="A registered trainer, or auto.")] = "auto",
    register_as: Annotated[
        str | None,
        typer.Option("--name", help="Register as this model; the dataset's name by default."),
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="Optimise for this device profile before rolling out.")
    ] = None,
    windows: Annotated[
        int,
        typer.Option(min=1, max=MAX_REVIEW_WINDOWS, help="Windows asked of each drifting device."),
    ] = 100,
    min_labelled: Annotated[
        int, typer.Option(min=1, help="Labelled windows it waits for before training.")
    ] = 30,
    budget_s: Annotated[float, typer.Option(min=0, help="With --model auto: its time.")] = 120.0,
    rollout: Annotated[
        str | None,
        typer.Option(
            help="Roll the model out with these `rollout start` options, e.g. '--to all "
            "--waves 50%,100% --shadow 30s --gate p99_ms<=20'; left out, it is only registered."
        ),
    ] = None,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set a policy: on a drift alert, retrain-on-drift asks the drifting devices for their
    least confident recent windows, waits for them to be labelled (edgestack windows label),
    trains on the dataset with them, optimises the model and rolls it out as --rollout says."""
    policy = request(
        RetrainPolicy,
        dataset=dataset,
        model=model,
        name=register_as,
        profile=profile,
        windows=windows,
        min_labelled=min_labelled,
        budget_s=budget_s,
        rollout=plan_of(rollout) if rollout is not None else None,
    )
    with connect(hub, admin_token) as client:
        view = call(lambda: client.set_policy(name, policy))
    if as_json:
        print_json(view)
        return
    console.print(f"{name} set: {_what(view)}", highlight=False)


@app.command("list")
def list_policies(
    hub: HubOpt = None, admin_token: AdminOpt = None, as_json: JsonOpt = False
) -> None:
    """List the policies the hub follows."""
    with connect(hub, admin_token) as client:
        rows = call(client.policies)
    listing = Listing(
        ["policy", "what it does"], [[v.name, _what(v)] for v in rows], wrap=["what it does"]
    )
    emit(rows, as_json, listing)


@app.command()
def remove(name: NameArg, hub: HubOpt = None, admin_token: AdminOpt = None) -> None:
    """Remove a policy; a run of it in progress is failed, its jobs left to finish."""
    with connect(hub, admin_token) as client:
        call(lambda: client.remove_policy(name))
    console.print(f"{name} removed", highlight=False)


@app.command()
def run(
    name: NameArg,
    device: Annotated[list[str], typer.Option(help="A device to run it for; repeat for more.")],
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a run now for the devices given, as a drift alert on them would."""
    trigger = request(PolicyTrigger, devices=device)
    with connect(hub, admin_token) as client:
        started = call(lambda: client.run_policy(name, trigger))
    if as_json:
        print_json(started)
        return
    console.print(
        f"{name} run {started.id}: asked {', '.join(started.devices)} for windows; label them "
        "with edgestack windows label, follow it with edgestack policy runs",
        highlight=False,
    )


@app.command()
def runs(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="The newest this many.")] = 20,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the newest policy runs, oldest of them first."""
    with connect(hub, admin_token) as client:
        rows = call(lambda: client.policy_runs(newest_first=True, limit=limit))
    rows.reverse()
    emit(rows, as_json, _runs(rows))


def _what(view: PolicyView) -> str:
    p = view.policy
    optimised = f", optimise for {p.profile}" if p.profile else ""
    plan = p.rollout
    rolled = (
        f", roll out to {' '.join(plan.to)} in {len(plan.waves)} waves"
        + (f" gated {plan.gate}" if str(plan.gate) else "")
        if plan
        else ""
    )
    return (
        f"on drift, {p.windows} windows a device into {p.dataset}; after {p.min_labelled} "
        f"labelled, train {p.model}{optimised}{rolled}"
    )


def _runs(rows: list[PolicyRunView]) -> Listing:
    cells = [
        [
            str(r.id),
            r.state,
            ", ".join(r.devices),
            str(r.labelled),
            str(r.job_id or ""),
            f"{r.model.name} v{r.model.version}" if r.model else "",
            r.error or r.reason,
        ]
        for r in rows
    ]
    return Listing(
        ["run", "state", "devices", "labelled", "job", "model", "why"],
        cells,
        wrap=["why", "devices"],
        hide_first=["job"],
    )
