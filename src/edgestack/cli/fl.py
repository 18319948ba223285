"""`edgestack fl`: federated learning on windows devices keep. `fl keep` has devices label and
keep the windows they see, on the device; `fl start` queues a hub job that runs Flower's
aggregator, has the devices train on those windows, registers the model and rolls it out."""

import shlex
from functools import partial
from typing import Annotated, get_args

import typer

from edgestack.cli.common import (
    AdminOpt,
    HubOpt,
    JsonOpt,
    call,
    connect,
    console,
    fail,
    print_json,
    request,
    workflow,
)
from edgestack.cli.jobs import follow_job
from edgestack.cli.rollouts import plan_of
from edgestack.protocol import (
    Collection,
    DesiredPatch,
    FederatedRequest,
    FederatedTask,
    RolloutPlan,
    RowsKind,
)

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

_TO_HELP = "Devices: an id, tag:key=value, or all; repeat for several."


@app.command()
def start(
    dataset: Annotated[
        str, typer.Option(help="The local dataset the devices keep (fl keep) and train on.")
    ],
    to: Annotated[list[str], typer.Option(help=_TO_HELP)],
    model: Annotated[str, typer.Option(help="The net each device trains: mlp or cnn1d.")] = "mlp",
    rounds: Annotated[int, typer.Option(help="Rounds of training and aggregation.")] = 10,
    strategy: Annotated[str, typer.Option(help="How updates are combined: fedavg, fedprox.")] = (
        "fedavg"
    ),
    min_clients: Annotated[
        int, typer.Option(help="Devices connected before the first round starts.")
    ] = 2,
    round_timeout: Annotated[
        float, typer.Option(help="Seconds a round waits for devices; late ones sit it out.")
    ] = 60.0,
    dp_clip: Annotated[
        float | None, typer.Option(help="Clip each update to this L2 norm (central DP).")
    ] = None,
    dp_noise: Annotated[
        float, typer.Option(help="Gaussian noise multiplier on the aggregate, with --dp-clip.")
    ] = 0.0,
    secagg: Annotated[
        bool, typer.Option("--secagg", help="Secure aggregation: the hub sees only the sum.")
    ] = False,
    register_as: Annotated[
        str | None,
        typer.Option("--name", help="Register the model as this; fl-DATASET by default."),
    ] = None,
    rollout: Annotated[
        str | None,
        typer.Option(
            help="Roll the model out with these `rollout start` options, e.g. '--to all "
            "--waves 50%,100% --shadow 30s'; left out, it is only registered."
        ),
    ] = None,
    waves: Annotated[
        str | None,
        typer.Option(help="Roll the model out to the --to devices in these waves: 50%,100%."),
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Queue the job and return; do not follow it.")
    ] = False,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a model on the devices' own windows: the hub's job runs the aggregator, the
    devices of --to train on what they keep in --dataset and send model updates only; each
    round is a hub event. Follows the job's log until it ends unless --no-wait."""
    if dp_noise > 0 and dp_clip is None:
        raise fail("--dp-noise: noise is scaled by the clipping norm; give --dp-clip too", 2)
    job = request(
        FederatedRequest,
        dataset=dataset,
        to=to,
        model=model,
        rounds=rounds,
        strategy=strategy,
        min_clients=min_clients,
        round_timeout=round_timeout,
        dp_clip=dp_clip,
        dp_noise=dp_noise,
        secagg=secagg,
        name=register_as,
        rollout=_plan(rollout, waves, to),
    )
    # Checked here as the job will, so a run it cannot make is refused before it is queued.
    from edgestack.learning.federated_job import federated_config

    workflow(lambda: federated_config(job))
    with connect(hub, admin_token) as client:
        queued = call(lambda: client.submit_job(job))
        if as_json:
            print_json(queued)
        else:
            console.print(
                f"job {queued.id} queued: {job.summary}; follow it with: "
                f"edgestack jobs logs {queued.id} --follow",
                highlight=False,
            )
        if not no_wait:
            follow_job(client, queued.id)


def _plan(rollout: str | None, waves: str | None, to: list[str]) -> RolloutPlan | None:
    if rollout is not None and waves is not None:
        raise fail("--waves: give the rollout as --rollout or as --waves, not both", 2)
    if waves is not None:
        given = ["--waves", waves, *(f"--to={target}" for target in to)]
        return plan_of(shlex.join(given), "--waves")
    return plan_of(rollout) if rollout is not None else None


@app.command()
def keep(
    device: Annotated[list[str], typer.Argument(help="The devices, by id.")],
    dataset: Annotated[
        str | None, typer.Option(help="The local dataset the windows go to, on the device.")
    ] = None,
    label: Annotated[
        str | None, typer.Option(help="The label each window the device sees is kept with.")
    ] = None,
    rows: Annotated[
        str,
        typer.Option(
            help="What is kept of a window: features (its app's, for an mlp) or raw (its "
            "samples, for a cnn1d)."
        ),
    ] = "features",
    stop: Annotated[
        bool, typer.Option("--stop", help="Keep no more windows; those kept stay.")
    ] = False,
    hub: HubOpt = None,
    admin_token: AdminOpt = None,
) -> None:
    """Have devices label the windows they see and keep them, on the device and never sent,
    for federated training (fl start --dataset); --stop ends it. A run under way goes on."""
    kept: Collection | None = None
    if stop:
        if label is not None or dataset is not None:
            raise fail("--stop: it keeps nothing, so it takes no --label or --dataset", 2)
    elif label is None or dataset is None:
        raise fail("--label and --dataset: give both to keep windows, or --stop to stop", 2)
    else:
        kept = request(Collection, label=label, dataset=dataset)
    if rows not in get_args(RowsKind):
        raise fail(f"--rows: '{rows}' is no kind of row; choose features or raw", 2)
    with connect(hub, admin_token) as client:
        for device_id in device:
            now = call(partial(client.device, device_id)).desired.federated
            task = (now or FederatedTask()).model_copy(update={"keep": kept})
            if kept is not None:
                task = task.model_copy(update={"dataset": kept.dataset, "rows": rows})
            empty = task.keep is None and task.aggregator is None
            patch = DesiredPatch(federated=None if empty else task)
            state = call(partial(client.update_desired, device_id, patch))
            said = f"keeps {kept.label} windows in {kept.dataset}" if kept else "keeps no windows"
            console.print(f"{device_id} desired state v{state.version}: {said}", highlight=False)
