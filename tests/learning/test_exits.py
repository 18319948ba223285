import numpy as np
import onnxruntime as ort
import pytest
from scipy.special import softmax

from edgestack.bundle import Bundle, FeatureSpec, InputSpec, SplitPlan
from edgestack.learning import TRAINERS, OnnxPredictor, package_split
from edgestack.learning.split import Link, choose_split, early_share, measure_costs, plan_split
from edgestack.learning.zoo import Cnn1dExits, SplitModel
from edgestack.learning.zoo.exits import BLOCKS
from edgestack.profiles import PROFILES

from .shapes import CHANNELS, SIZE, placed_shapes

LABELS = ["sine", "square"]
SPEC = InputSpec(
    sensors=["a", "b"],
    rate_hz=100.0,
    window=SIZE,
    hop=SIZE,
    extractors=[FeatureSpec(kind="raw")],
    features=[f"{s}.raw{i}" for s in "ab" for i in range(SIZE)],
)


@pytest.fixture(scope="module")
def trained() -> tuple[Cnn1dExits, np.ndarray, np.ndarray]:
    x, y = placed_shapes(80, seed=4)
    x_test, y_test = placed_shapes(200, seed=5)
    trainer = TRAINERS.build("cnn1d_exits", {"shape": (CHANNELS, SIZE), "epochs": 60})
    assert isinstance(trainer, Cnn1dExits)
    trainer.fit(x, y, seed=0)
    return trainer, x_test, y_test


@pytest.fixture(scope="module")
def cut(trained: tuple[Cnn1dExits, np.ndarray, np.ndarray]) -> dict[str, SplitModel]:
    """The trained net cut where the tests look, each cut exported once."""
    trainer, _, _ = trained
    x_train, _ = placed_shapes(80, seed=4)
    return {
        "2": trainer.split(2),
        "3": trainer.split(3),
        "2 int8": trainer.split(2, int8_from=x_train),
    }


def run_split(head: bytes, tail: bytes, rows: np.ndarray) -> tuple[np.ndarray, ...]:
    early, tensor = ort.InferenceSession(head).run(None, {"features": rows})
    (final,) = ort.InferenceSession(tail).run(None, {"intermediate": tensor})
    return early, tensor, final


@pytest.mark.parametrize("at", [2, 3])
def test_head_and_tail_give_the_whole_nets_answer(
    trained: tuple[Cnn1dExits, np.ndarray, np.ndarray], cut: dict[str, SplitModel], at: int
) -> None:
    trainer, x_test, _ = trained

    split = cut[str(at)]
    early, tensor, final = run_split(split.head, split.tail, x_test)

    assert final == pytest.approx(trainer.predict_proba(x_test), abs=1e-4)
    assert early == pytest.approx(trainer.exit_proba(x_test), abs=1e-4)
    assert tensor.dtype == np.float32 and tensor.shape == (len(x_test), *split.shape)
    assert split.tensor_bytes == 4 * tensor[0].size


def test_an_int8_tensor_sends_a_quarter_of_the_bytes_and_keeps_the_answers(
    trained: tuple[Cnn1dExits, np.ndarray, np.ndarray], cut: dict[str, SplitModel]
) -> None:
    trainer, x_test, _ = trained

    exact, small = cut["2"], cut["2 int8"]
    _, tensor, final = run_split(small.head, small.tail, x_test)

    whole = trainer.predict_proba(x_test)
    assert tensor.dtype == np.int8
    assert small.tensor_bytes * 4 == exact.tensor_bytes == 4 * tensor[0].size
    assert small.scale is not None and small.scale > 0 and small.zero_point is not None
    assert np.mean(final.argmax(axis=1) == whole.argmax(axis=1)) >= 0.98
    assert final == pytest.approx(whole, abs=0.05)
    assert not np.allclose(final, whole, atol=1e-6)  # it was rounded on the way


def test_the_exit_answers_most_clear_windows_right_and_few_faint_ones(
    trained: tuple[Cnn1dExits, np.ndarray, np.ndarray],
) -> None:
    trainer, x_test, y_test = trained
    noise = 0.3 * np.random.default_rng(1).standard_normal(x_test.shape).astype(np.float32)
    faint = noise + 0.25 * x_test  # the shape a quarter as strong, in the same noise

    clear_sure = trainer.exit_proba(x_test).max(axis=1) >= 0.9
    faint_sure = trainer.exit_proba(faint).max(axis=1) >= 0.9

    assert clear_sure.mean() >= 0.7
    assert faint_sure.mean() <= 0.3
    right = trainer.exit_proba(x_test).argmax(axis=1) == y_test
    assert right[clear_sure].mean() >= 0.95


@pytest.mark.parametrize("at", [0, 1, 4])
def test_a_split_without_the_exit_on_the_device_or_a_tail_is_refused(
    trained: tuple[Cnn1dExits, np.ndarray, np.ndarray], at: int
) -> None:
    trainer, _, _ = trained

    with pytest.raises(ValueError, match=rf"at: {at}; .* give 2 to 3"):
        trainer.split(at)


def test_the_blocks_alone_chain_to_the_whole_net_and_cost_what_a_split_sends(
    trained: tuple[Cnn1dExits, np.ndarray, np.ndarray], cut: dict[str, SplitModel]
) -> None:
    trainer, x_test, _ = trained
    blocks = trainer.blocks()

    costs = measure_costs(blocks, trainer.exit_after, runs=5)
    small = measure_costs(blocks, trainer.exit_after, int8=True, runs=5)

    *layered, exit_block = blocks
    tensor = x_test
    for block in layered:
        (tensor,) = ort.InferenceSession(block.onnx).run(None, {"given": tensor})
        if block.name == BLOCKS[trainer.exit_after - 1]:
            (early,) = ort.InferenceSession(exit_block.onnx).run(None, {"given": tensor})
    assert softmax(tensor, axis=1) == pytest.approx(trainer.predict_proba(x_test), abs=1e-4)
    assert softmax(early, axis=1) == pytest.approx(trainer.exit_proba(x_test), abs=1e-4)
    assert [layer.name for layer in costs.layers] == list(BLOCKS)
    assert costs.input_bytes == 4 * x_test.shape[1]
    assert costs.layers[1].out_bytes == cut["2"].tensor_bytes
    assert small.layers[1].out_bytes == cut["2 int8"].tensor_bytes
    # Costed by the chooser: a device 100,000 times slower than a server one fast hop away
    # sends the window itself.
    served = choose_split(
        costs,
        device_speed=1e5,
        server_speed=1.0,
        link=Link(bandwidth_bytes_per_s=1e10, rtt_ms=0.0),
        threshold=0.9,
        early_share=0.9,
    )
    assert (served.at, served.offload_bytes) == (0, costs.input_bytes)


def test_a_plan_from_measured_blocks_keeps_all_on_a_device_behind_a_slow_link(
    trained: tuple[Cnn1dExits, np.ndarray, np.ndarray],
) -> None:
    trainer, x_test, _ = trained
    crawling = Link(bandwidth_bytes_per_s=100.0, rtt_ms=1000.0)

    plan = plan_split(
        trainer,
        x_test,
        device=PROFILES["pi"],
        server=PROFILES["cloud"],
        link=crawling,
        threshold=0.9,
    )

    assert (plan.at, plan.offload_bytes) == (len(BLOCKS), 0)
    assert plan.early_share == early_share(trainer.exit_proba(x_test), 0.9) > 0.5


def test_a_plan_packages_a_head_for_the_device_and_a_tail_for_the_server(
    trained: tuple[Cnn1dExits, np.ndarray, np.ndarray],
) -> None:
    trainer, x_test, _ = trained
    x_train, _ = placed_shapes(80, seed=4)
    plan = SplitPlan(
        at=2,
        blocks=4,
        point="conv2",
        threshold=0.9,
        early_share=0.8,
        expected_ms=3.0,
        offload_bytes=512,
    )

    device, server = package_split(
        trainer, plan, name="m", labels=LABELS, spec=SPEC, int8_from=x_train
    )

    assert device is not None and server is not None
    device, server = Bundle.unpack(device.pack()), Bundle.unpack(server.pack())
    assert server.manifest.name == "m-tail"
    assert device.manifest.split == server.manifest.split
    assert device.manifest.split is not None and device.manifest.split.scale is not None
    assert device.manifest.split.model_copy(update={"scale": None, "zero_point": None}) == plan
    _, early = OnnxPredictor(device.model, LABELS).predict(x_test)
    assert early == pytest.approx(trainer.exit_proba(x_test), abs=1e-4)
    _, _, final = run_split(device.model, server.model, x_test)
    assert final == pytest.approx(trainer.predict_proba(x_test), abs=0.05)


def test_a_plan_that_keeps_all_on_the_device_packages_the_whole_net_alone(
    trained: tuple[Cnn1dExits, np.ndarray, np.ndarray],
) -> None:
    trainer, x_test, _ = trained
    plan = SplitPlan(
        at=4,
        blocks=4,
        point="classifier",
        threshold=0.9,
        early_share=0.8,
        expected_ms=3.0,
        offload_bytes=0,
    )

    device, server = package_split(trainer, plan, name="m", labels=LABELS, spec=SPEC)

    assert server is None and device is not None
    assert device.manifest.split == plan
    _, whole = OnnxPredictor(device.model, LABELS).predict(x_test)
    assert whole == pytest.approx(trainer.predict_proba(x_test), abs=1e-4)


def test_a_plan_without_held_out_windows_is_refused(
    trained: tuple[Cnn1dExits, np.ndarray, np.ndarray],
) -> None:
    trainer, x_test, _ = trained

    with pytest.raises(ValueError, match="held_out: no rows"):
        plan_split(
            trainer,
            x_test[:0],
            device=PROFILES["pi"],
            server=PROFILES["cloud"],
            link=Link(1e6, rtt_ms=5.0),
            threshold=0.9,
        )
