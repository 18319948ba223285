import numpy as np
import pytest

from edgestack.bundle import SplitPlan
from edgestack.learning import TRAINERS
from edgestack.learning.fit import fit
from edgestack.learning.split import Link
from edgestack.learning.tradeoff import Energy, SplitNet, TierModel, tradeoff
from edgestack.learning.zoo import Cnn1dExits
from edgestack.profiles import PROFILES
from edgestack.protocol import BundleRef

from .shapes import CHANNELS, SIZE, placed_shapes

LINK = Link(bandwidth_bytes_per_s=100_000, rtt_ms=20)


def _blobs(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Three classes apart on the first column, overlapping on the rest: a model of the first
    column alone is right most of the time and unsure where the classes meet; a forest on
    every column is right nearly always."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.standard_normal((n, 6)).astype(np.float32)
    x[:, 0] += 2.0 * y
    x[:, 1:4] += 1.5 * (y[:, None] == np.arange(3))
    return x, [f"c{k}" for k in y]


def _tier(trainer: str, params: dict, x: np.ndarray, labels: list[str], profile: str) -> TierModel:
    result = fit(trainer, x, labels, params=params, seed=0)
    ref = BundleRef(name=trainer.replace("_", "-"), version=1, digest="0" * 64)
    return TierModel(ref, result.onnx, result.labels, x, "features", PROFILES[profile])


@pytest.fixture(scope="module")
def tiers() -> tuple[TierModel, TierModel, list[str]]:
    x, labels = _blobs(600, seed=1)
    held_x, held = _blobs(1000, seed=2)
    # the device's small model reads one column, as a device computing fewer features would
    device = _tier("logistic_regression", {}, x[:, :1], labels, "pi")
    cloud = _tier("random_forest", {}, x, labels, "cloud")
    return (
        TierModel(
            device.ref, device.onnx, device.labels, held_x[:, :1], "features", device.profile
        ),
        TierModel(cloud.ref, cloud.onnx, cloud.labels, held_x, "features", cloud.profile),
        held,
    )


def test_joint_inference_sends_its_share_and_gains_accuracy_for_its_bytes(
    tiers: tuple[TierModel, TierModel, list[str]],
) -> None:
    device, cloud, truth = tiers

    rows = {r.policy: r for r in tradeoff(device, cloud, truth, link=LINK, fractions=(0.1, 0.3))}

    alone, joint_10, joint_30, remote = (
        rows["device only"],
        rows["joint 10% (confidence)"],
        rows["joint 30% (confidence)"],
        rows["cloud only"],
    )
    assert (alone.offload_fraction, alone.uplink_bytes) == (0.0, 0.0)
    assert remote.offload_fraction == 1.0 and remote.uplink_bytes > 6 * 4
    # calibrated on the other half of the windows: near the target, not exactly on it
    assert joint_10.offload_fraction == pytest.approx(0.1, abs=0.06)
    assert joint_30.offload_fraction == pytest.approx(0.3, abs=0.08)
    assert joint_10.uplink_bytes == pytest.approx(joint_10.offload_fraction * remote.uplink_bytes)
    assert alone.accuracy < joint_10.accuracy <= joint_30.accuracy
    assert remote.accuracy > alone.accuracy + 0.05
    # the gate sends the windows the device is unsure of, so a third of them closes most
    # of the gap to the cloud model
    assert joint_30.accuracy >= remote.accuracy - 0.03
    assert alone.latency_ms < joint_30.latency_ms < remote.latency_ms + alone.latency_ms
    assert remote.latency_ms > LINK.rtt_ms


def test_energy_counts_the_devices_work_and_its_radios_bytes(
    tiers: tuple[TierModel, TierModel, list[str]],
) -> None:
    device, cloud, truth = tiers
    energy = Energy(device_w=2.0, radio_nj_per_byte=1000.0)

    rows = {r.policy: r for r in tradeoff(device, cloud, truth, link=LINK, energy=energy)}

    assert rows["device only"].energy_mj == pytest.approx(2.0 * rows["device only"].latency_ms)
    assert rows["cloud only"].energy_mj == pytest.approx(rows["cloud only"].uplink_bytes * 1e-3)


def test_a_split_net_answers_early_on_the_device_and_sends_the_rest_on() -> None:
    x, y = placed_shapes(80, seed=4)
    held_x, held_y = placed_shapes(60, seed=5)
    trainer = TRAINERS.build("cnn1d_exits", {"shape": (CHANNELS, SIZE), "epochs": 30})
    assert isinstance(trainer, Cnn1dExits)
    trainer.fit(x, y, seed=0)
    cut = trainer.split(2)
    labels = ["sine", "square"]
    whole = TierModel(
        BundleRef(name="net", version=1, digest="0" * 64),
        trainer.to_onnx(),
        labels,
        held_x,
        "raw",
        PROFILES["pi"],
    )
    truth = [labels[k] for k in held_y]

    def split_at(threshold: float) -> SplitNet:
        plan = SplitPlan(
            at=2,
            blocks=4,
            point="conv2",
            threshold=threshold,
            early_share=0.5,
            expected_ms=1.0,
            offload_bytes=cut.tensor_bytes,
        )
        return SplitNet(plan, cut.head, cut.tail)

    sure = tradeoff(whole, whole, truth, link=LINK, fractions=(), split=split_at(0.0))
    unsure = tradeoff(whole, whole, truth, link=LINK, fractions=(), split=split_at(1.0))

    all_early, all_sent = sure[1], unsure[1]
    assert all_early.policy == "split after conv2"
    assert (all_early.offload_fraction, all_early.uplink_bytes) == (0.0, 0.0)
    exit_right = np.mean(
        np.asarray(labels)[trainer.exit_proba(held_x[1::2]).argmax(1)] == truth[1::2]
    )
    assert all_early.accuracy == pytest.approx(exit_right)
    # the tail answers as the whole net does, on the windows the exit sends on
    assert all_sent.offload_fraction > 0.5
    assert all_sent.uplink_bytes == pytest.approx(all_sent.offload_fraction * cut.tensor_bytes)
    assert all_sent.accuracy >= unsure[-1].accuracy - 1 / len(truth[1::2]) * 2
    # Cut with an int8 tensor, the tail is timed on int8 zeros, as it takes them.
    small = trainer.split(2, int8_from=x)
    plan = split_at(1.0).plan.model_copy(update={"offload_bytes": small.tensor_bytes})
    as_int8 = tradeoff(
        whole, whole, truth, link=LINK, fractions=(), split=SplitNet(plan, small.head, small.tail)
    )[1]
    assert small.tensor_bytes < cut.tensor_bytes
    assert as_int8.uplink_bytes == pytest.approx(as_int8.offload_fraction * small.tensor_bytes)


def test_inputs_that_cannot_be_measured_are_refused_naming_the_field(
    tiers: tuple[TierModel, TierModel, list[str]],
) -> None:
    device, cloud, truth = tiers

    with pytest.raises(ValueError, match=r"device\.rows: 1000 rows for 999 labels"):
        tradeoff(device, cloud, truth[:-1], link=LINK)
    with pytest.raises(ValueError, match=r"fractions\[1\]: 1.5"):
        tradeoff(device, cloud, truth, link=LINK, fractions=(0.1, 1.5))
    with pytest.raises(ValueError, match="link: 0 bytes/s"):
        tradeoff(device, cloud, truth, link=Link(bandwidth_bytes_per_s=0, rtt_ms=5))
