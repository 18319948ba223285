"""Federated learning on Flower: devices train on windows they keep, the aggregator sees model
parameters and counts only.

`client_app` is the device side, `server_app` the aggregator (Flower's FedAvg or FedProx, with
its differential-privacy wrapper on request, or FedAvg under Flower's SecAgg+ with `secagg`;
an MLP over feature rows or the zoo's 1D-CNN over raw windows), `Federation` runs both as
separate processes on this machine through Flower's SuperLink and SuperNodes; `start_client`
starts one device's SuperNode towards a SuperLink elsewhere, and `Tap` copies the bytes on
the link between them.

    config = FederatedConfig(rounds=5, min_clients=2, round_timeout=30)
    result = run_federation([save_local_windows(path, x, names, spec) for ...], config, workdir)
    result.history[-1].accuracy, result.labels
    bundle_model = result.to_onnx()   # `features` in, `probabilities` out, labels inside
"""

from edgestack.federated.client import (
    DATA_PATH,
    LocalWindows,
    client_app,
    load_local_windows,
    save_local_windows,
)
from edgestack.federated.config import FederatedConfig
from edgestack.federated.runner import Federation, Node, run_federation, start_client
from edgestack.federated.server import (
    PROGRESS_PATH,
    RESULT_PATH,
    FederatedResult,
    RoundRecord,
    federate,
    make_strategy,
    server_app,
)
from edgestack.federated.tap import Tap

__all__ = [
    "DATA_PATH",
    "PROGRESS_PATH",
    "RESULT_PATH",
    "FederatedConfig",
    "FederatedResult",
    "Federation",
    "LocalWindows",
    "Node",
    "RoundRecord",
    "Tap",
    "client_app",
    "federate",
    "load_local_windows",
    "make_strategy",
    "run_federation",
    "save_local_windows",
    "server_app",
    "start_client",
]
