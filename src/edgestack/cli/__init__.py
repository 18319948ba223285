"""The one command line: `edgestack hub`, `agent`, `demo`, listings of a running hub, `data`
for its datasets, `spec` for input specs, `train` for models, `optimize` to fit them to a
device, `rollout` to move them onto devices wave by wave, `keys` for the hub's signing keys,
`jobs` for the hub's work, `alerts`, `accuracy` and `feedback` to watch the models, `windows`
for windows to label, `policy` for what the hub does on its own, `tokens` for who may call it,
`audit` for what they did, `webhooks` to have events POSTed to a URL and `broker` to carry
devices over MQTT. `export` writes a
model as C for a microcontroller; `offload` sends a device's hard windows to a bigger model,
`split` cuts a multi-exit net between a device and a server, and `tradeoff` measures what
sharing inference with the cloud tier costs and gains; `fl` trains a model on windows devices
keep, by federated learning; `fleet simulate` loads a hub with simulated devices."""

import typer

from edgestack.cli import (
    alerts,
    broker,
    data,
    evaluate,
    export,
    fl,
    fleet,
    jobs,
    keys,
    offload,
    optimize,
    policy,
    processes,
    review,
    rollouts,
    simulate,
    spec,
    split,
    tokens,
    tradeoff,
    train,
    twin,
    watch,
    webhooks,
)

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.add_typer(processes.hub_app, name="hub")
app.command()(processes.agent)
app.command()(processes.demo)
fleet.devices_app.command("set")(twin.set_device)
fleet.devices_app.command()(twin.inject)
fleet.devices_app.command()(twin.start)
fleet.devices_app.command()(twin.stop)
app.add_typer(fleet.devices_app, name="devices")
app.command()(fleet.models)
app.command()(fleet.events)
app.command()(watch.watch)
app.command()(fleet.profiles)
app.command()(fleet.deploy)
app.command()(twin.undeploy)
app.command()(train.train)
app.command()(optimize.optimize)
app.command()(evaluate.evaluate)
app.command()(split.split)
app.command()(tradeoff.tradeoff)
app.command()(export.export)
app.add_typer(data.app, name="data")
app.add_typer(spec.app, name="spec")
app.add_typer(keys.app, name="keys")
app.add_typer(jobs.app, name="jobs")
app.add_typer(rollouts.app, name="rollout")
app.add_typer(alerts.alerts_app, name="alerts")
app.command()(alerts.accuracy)
app.command()(alerts.feedback)
app.add_typer(review.app, name="windows")
app.add_typer(policy.app, name="policy")
app.add_typer(offload.app, name="offload")
app.add_typer(fl.app, name="fl")
app.add_typer(tokens.app, name="tokens")
app.command()(tokens.audit)
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(broker.app, name="broker")
app.add_typer(simulate.app, name="fleet")
