"""What the benchmarks of devices working together share: windows of simulated motors, a
federation against training on the pooled rows, and a net with an early exit cut for a device
and a server. `federated.py`, `split.py` and `collab.py` import it from beside them."""

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from edgestack.bundle import SplitPlan
from edgestack.federated import (
    FederatedConfig,
    FederatedResult,
    Federation,
    Tap,
    _net,
    save_local_windows,
)
from edgestack.learning import TRAINERS
from edgestack.learning.split import Link, plan_split
from edgestack.learning.zoo import Cnn1dExits
from edgestack.processing import FeaturePipeline, vibration_spec
from edgestack.profiles import PROFILES
from edgestack.sensing import FAULTS, MotorSimulator

AXES = 3
RAW = 512  # samples of each window a raw-window net takes: 64 ms, the bearing's ringing in it
SPLIT_DEVICE, SPLIT_SERVER = PROFILES["mcu"], PROFILES["cloud"]
SPLIT_LINK = Link(bandwidth_bytes_per_s=1e6, rtt_ms=5.0)  # Wi-Fi to an edge node on one floor
EXIT_THRESHOLD = 0.9


@dataclass(frozen=True)
class Windows:
    """Windows of simulated motors, one per row: the motor app's feature rows, the first
    `RAW` samples of its accelerometer axes (channel-major) and the condition's index in
    `FAULTS`."""

    features: np.ndarray
    raw: np.ndarray
    faults: np.ndarray

    @staticmethod
    def join(parts: "list[Windows]") -> "Windows":
        """The rows of every part, in order."""
        return Windows(
            np.vstack([p.features for p in parts]),
            np.vstack([p.raw for p in parts]),
            np.concatenate([p.faults for p in parts]),
        )


def motor_windows(
    machine: int, fault: int, count: int, *, seed: int, severity: float = 1.0
) -> Windows:
    """`count` windows of `machine` (its own shaft speed, load and resonance; its regimes
    changing as it runs) with fault `FAULTS[fault]` injected at `severity`. `seed` picks the
    fleet: machine `machine` of fleet `seed` is simulated motor `1000 * seed + machine`."""
    spec = vibration_spec()
    motor = MotorSimulator(1000 * seed + machine, start=0.0)
    motor.inject(FAULTS[fault], severity=severity)
    chunk = motor.read(spec.window * count)
    raw = chunk.data[:AXES].reshape(AXES, count, spec.window)[:, :, :RAW]
    return Windows(
        FeaturePipeline(spec).push(chunk),
        raw.transpose(1, 0, 2).reshape(count, -1).astype(np.float32),
        np.full(count, fault, dtype=np.int64),
    )


def skewed_counts(machine: int, total: int, own_share: float) -> list[int]:
    """Windows per condition for a device that sees mostly one: `own_share` of `total` of
    condition `machine` (modulo the conditions), the rest shared evenly by the others."""
    own = machine % len(FAULTS)
    rest = (1 - own_share) / (len(FAULTS) - 1)
    return [round(total * (own_share if f == own else rest)) for f in range(len(FAULTS))]


@dataclass(frozen=True)
class FederatedOutcome:
    """A federation against central training on the same rows: both accuracies on the same
    held-out rows, the federation's rounds, all the devices sent and the bytes of their
    feature rows found in it."""

    central_accuracy: float
    federated_accuracy: float
    result: FederatedResult
    uplink_bytes: int
    raw_bytes_uplinked: int

    @property
    def gap_pts(self) -> float:
        """Central minus federated accuracy, in points."""
        return 100 * (self.central_accuracy - self.federated_accuracy)


def federated_vs_central(
    devices: list[tuple[np.ndarray, np.ndarray]],
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    rounds: int,
    workdir: Path,
) -> FederatedOutcome:
    """Federate the feature rows and conditions (indices into `FAULTS`) each device of
    `devices` keeps, labelled by name on the device, as real Flower processes on loopback
    with every byte a device sends passing through a `Tap`; train the same net centrally on
    the pooled rows for as many passes; score both on the test rows. A feature row counts as
    uplinked when its float32 bytes, which is how arrays cross the link, are found in what the
    devices sent."""
    classes = list(FAULTS)
    width = x_test.shape[1]
    config = FederatedConfig(
        width=width,
        classes=classes,
        rounds=rounds,
        min_clients=len(devices),
        round_timeout=120,
    )
    rows = np.vstack([x for x, _ in devices]).astype(np.float32)
    central = _net.train(
        _net.build(
            width,
            len(classes),
            config.hidden,
            seed=0,
            scaling=(rows.mean(axis=0), rows.std(axis=0)),
        ),
        rows,
        np.concatenate([y for _, y in devices]),
        epochs=config.rounds * config.local_epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        proximal_mu=0.0,
        seed=0,
    )
    _, central_accuracy = _net.evaluate(central, x_test, y_test)
    files = [
        save_local_windows(
            workdir / f"device-{i}.npz", x, [classes[k] for k in y], vibration_spec()
        )
        for i, (x, y) in enumerate(devices)
    ]
    with Federation(workdir / "run", config) as federation, Tap(federation.address) as tap:
        for path in files:
            federation.add_client(path, via=tap.address)
        result = federation.run()
    first = _net.build(width, len(classes), config.hidden, seed=config.seed)
    if first["1.weight"].tobytes() not in tap.downlink:
        raise SystemExit("the first model did not cross the link as raw bytes: the search is void")
    predicted = np.asarray(result.labels)[result.predict(x_test)]
    return FederatedOutcome(
        central_accuracy=float(central_accuracy),
        federated_accuracy=float((predicted == np.asarray(classes)[y_test]).mean()),
        result=result,
        uplink_bytes=len(tap.uplink),
        raw_bytes_uplinked=sum(len(r.tobytes()) for r in rows if r.tobytes() in tap.uplink),
    )


@dataclass(frozen=True)
class ExitsNet:
    """A trained net with an early exit, where to cut it, and the rows it trained on (which
    set the int8 tensor's range when it is cut)."""

    trainer: Cnn1dExits
    plan: SplitPlan
    trained_on: np.ndarray


def exits_net(
    x: np.ndarray, y: np.ndarray, *, epochs: int = 60, threshold: float = EXIT_THRESHOLD
) -> ExitsNet:
    """The zoo's `cnn1d_exits` trained on raw windows `x` of classes `y` (a quarter held
    out), and where `plan_split` cuts it between `SPLIT_DEVICE` and `SPLIT_SERVER` over
    `SPLIT_LINK` at the exit's `threshold`, the tensor crossing as int8."""
    for logger in ("torch.onnx", "onnxscript"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    x_train, x_held, y_train, _ = train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)
    trainer = TRAINERS.build(
        "cnn1d_exits", {"shape": (AXES, RAW), "filters": 32, "exit_after": 1, "epochs": epochs}
    )
    assert isinstance(trainer, Cnn1dExits)
    trainer.fit(x_train, y_train, seed=0)
    plan = plan_split(
        trainer,
        x_held,
        device=SPLIT_DEVICE,
        server=SPLIT_SERVER,
        link=SPLIT_LINK,
        threshold=threshold,
        int8=True,
    )
    return ExitsNet(trainer, plan, x_train)
