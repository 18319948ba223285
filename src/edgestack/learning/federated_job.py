"""What a federated job does, as a library call: the hub's worker runs it for a
`FederatedRequest`, and `edgestack fl start` submits one.

The aggregator (a Flower SuperLink and the run's `ServerApp`) starts here, the devices of the
request's targets are pointed at it through their desired state, and the model they train
on windows they keep is registered as a bundle with its lineage and rolled out when asked.
The devices are released whatever happens: a failed or cancelled job leaves no device
training for an aggregator that is gone.

    with HubClient(url, admin_token=token) as client:
        done = run_federated(client, FederatedRequest(dataset="motors", to=["all"]), job_id,
                             workdir, site=Site("hub.plant-4.local", 9092))
        done.model.version, done.history[-1].participants
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgestack.bundle import Bundle, Lineage
from edgestack.client import HubClient, HubError
from edgestack.federated import FederatedConfig, FederatedResult, Federation, RoundRecord
from edgestack.learning.fit import Progress
from edgestack.learning.workflow import WorkflowError
from edgestack.protocol import (
    DesiredPatch,
    FederatedRequest,
    FederatedTask,
    ModelView,
    RolloutRequest,
    RolloutView,
    slug,
)

__all__ = ["Federated", "Site", "federated_config", "federated_devices", "run_federated"]

log = logging.getLogger("edgestack.learning.federated_job")


@dataclass(frozen=True)
class Site:
    """Where a federated job's aggregator listens: `host`, the address devices dial
    (loopback reaches only agents on this machine), and `port` (0: a free one per job)."""

    host: str = "127.0.0.1"
    port: int = 0


@dataclass(frozen=True)
class Federated:
    """A federated job's outcome: the registered `model`, the `devices` asked to train, one
    record per round, and the rollout started (None when none was asked for)."""

    model: ModelView
    devices: list[str]
    history: list[RoundRecord]
    rollout: RolloutView | None

    @property
    def accuracy(self) -> float | None:
        """The devices' accuracy on their own windows in the last round that heard any."""
        return _last_accuracy(self.history)

    @property
    def summary(self) -> str:
        """The outcome in a line."""
        rolled = f", rollout {self.rollout.id} started" if self.rollout else ""
        return (
            f"registered {self.model.name} v{self.model.version} after {len(self.history)} "
            f"rounds on {len(self.devices)} devices{rolled}"
        )

    def result(self) -> dict[str, Any]:
        """The job's result, as the hub keeps it."""
        return {
            "model": self.model.model_dump(mode="json"),
            "rounds": len(self.history),
            "participants": [r.participants for r in self.history],
            "accuracy": self.accuracy,
            "devices": self.devices,
            "rollout": self.rollout.id if self.rollout else None,
        }


def federated_config(request: FederatedRequest) -> FederatedConfig:
    """The library's run config for `request`; refused, naming the field, for settings that
    do not go together (secure aggregation with DP clipping, or with FedProx)."""
    try:
        return FederatedConfig(
            model=request.model,
            rounds=request.rounds,
            strategy=request.strategy,
            min_clients=request.min_clients,
            round_timeout=request.round_timeout,
            dp_clip=request.dp_clip,
            dp_noise=request.dp_noise,
            secagg=request.secagg,
        )
    except ValidationError as exc:
        message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        field = message.partition(":")[0]
        known = field if field in FederatedRequest.model_fields else None
        raise WorkflowError(message, field=known, usage=True) from None


def federated_devices(client: HubClient, targets: list[str]) -> list[str]:
    """The ids of the enrolled devices `targets` name (ids, `tag:k=v,...`, `all`), sorted;
    refused naming the target that names none."""
    chosen: set[str] = set()
    for target in dict.fromkeys(targets):
        if target == "all":
            found = [d.device_id for d in client.devices()]
        elif target.startswith("tag:"):
            found = [d.device_id for d in client.devices(tag=target[4:].split(","))]
        else:
            try:
                found = [client.device(target).device_id]
            except HubError as exc:
                if exc.status != 404:
                    raise
                found = []
        if not found:
            raise WorkflowError(
                f"to: no enrolled device matches {target}; see edgestack devices, or change "
                "the target",
                field="to",
            )
        chosen.update(found)
    return sorted(chosen)


def run_federated(
    client: HubClient,
    request: FederatedRequest,
    job_id: int,
    workdir: Path,
    *,
    site: Site | None = None,
    progress: Progress | None = None,
    milestone: Progress | None = None,
) -> Federated:
    """Run `request` as job `job_id`: start the aggregator at `site` in `workdir`, point the
    devices of `request.to` at it (each keeping the windows it kept), train for its rounds,
    telling `milestone` of each round as it ends, release the devices, register the model and
    roll it out when asked.

    Raises `WorkflowError` for a request that cannot run or a run that gives no model,
    `HubError` when the hub refuses."""
    config = federated_config(request)
    name = request.name or slug(f"fl-{request.dataset}")
    devices = federated_devices(client, request.to)
    if len(devices) < request.min_clients:
        raise WorkflowError(
            f"min_clients: {request.min_clients}, but to names {len(devices)} devices; lower "
            "--min-clients or target more devices",
            field="min_clients",
        )
    site = site or Site()
    workdir.mkdir(parents=True, exist_ok=True)
    steered: dict[str, FederatedTask | None] = {}
    try:
        with Federation(workdir, config, host=site.host, port=site.port) as federation:
            for device_id in devices:
                steered[device_id] = _steer(client, device_id, federation.address, request, job_id)
            if progress is not None:
                progress(f"aggregator at {federation.address}; {len(devices)} devices", 0, 1)
            result = federation.run(on_round=_teller(config.rounds, milestone))
    except RuntimeError as exc:
        # The SuperLink would not start (the port taken?) or the run gave no model.
        raise WorkflowError(f"the federated run failed: {exc}") from None
    finally:
        for device_id, before in steered.items():
            _release(client, device_id, job_id, before)
    model = client.register_model(_bundle(name, request, config, result).pack())
    rollout = None
    if request.rollout is not None:
        rollout = client.start_rollout(
            RolloutRequest(**request.rollout.model_dump(), model=model.name, version=model.version)
        )
    return Federated(model, devices, result.history, rollout)


def _steer(
    client: HubClient, device_id: str, address: str, request: FederatedRequest, job_id: int
) -> FederatedTask | None:
    """Point `device_id` at the aggregator, keeping what it keeps; what it had before."""
    before = client.device(device_id).desired.federated
    task = FederatedTask(
        aggregator=address,
        dataset=request.dataset,
        job=job_id,
        keep=before.keep if before is not None else None,
    )
    client.update_desired(device_id, DesiredPatch(federated=task))
    return before


def _release(client: HubClient, device_id: str, job_id: int, before: FederatedTask | None) -> None:
    """Give `device_id` back its federated task as it was before job `job_id`, unless
    someone has since given it another."""
    try:
        now = client.device(device_id).desired.federated
        if now is not None and now.job == job_id:
            restored = (
                before.model_copy(update={"aggregator": None, "job": None}) if before else None
            )
            client.update_desired(device_id, DesiredPatch(federated=restored))
    except HubError as exc:
        # One device the hub cannot update does not keep the others training.
        log.warning("device %s still names job %d's aggregator: %s", device_id, job_id, exc)


def _teller(rounds: int, milestone: Progress | None) -> Callable[[RoundRecord], None]:
    def told(record: RoundRecord) -> None:
        if milestone is None:
            return
        scored = f", accuracy {record.accuracy:.2f}" if record.accuracy is not None else ""
        milestone(
            f"round {record.round}/{rounds}: {record.participants} devices{scored}",
            record.round,
            rounds,
        )

    return told


def _bundle(
    name: str, request: FederatedRequest, config: FederatedConfig, result: FederatedResult
) -> Bundle:
    if result.spec is None:
        raise WorkflowError(
            "the devices' windows name no input spec, so the model cannot be registered: "
            "devices keep windows with the spec of the model they run"
        )
    accuracy = _last_accuracy(result.history)
    return Bundle.create(
        name=name,
        labels=result.labels,
        input=result.spec,
        model=result.to_onnx(),
        metrics={} if accuracy is None else {"federated_accuracy": accuracy},
        lineage=Lineage(
            trainer=f"federated:{request.model}",
            dataset=request.dataset,
            params={
                "rounds": config.rounds,
                "participants": [r.participants for r in result.history],
                "strategy": config.strategy,
                "min_clients": config.min_clients,
                "dp_clip": config.dp_clip,
                "dp_noise": config.dp_noise,
                "secagg": request.secagg,
            },
            seed=config.seed,
        ),
    )


def _last_accuracy(history: list[RoundRecord]) -> float | None:
    scored = [r.accuracy for r in history if r.accuracy is not None]
    return scored[-1] if scored else None
