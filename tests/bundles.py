"""Bundles of random classifiers, for tests that need a model to ship, swap or refuse rather
than one that is right."""

from collections.abc import Sequence

import numpy as np

from edgestack.bundle import Bundle, FeatureSpec, InputSpec, SplitPlan
from edgestack.learning import TRAINERS, package_split, train_classifier
from edgestack.learning.zoo import Cnn1dExits
from edgestack.monitoring import reference
from edgestack.processing import make_spec, vibration_spec


def random_bundle(
    seed: int,
    *,
    name: str = "m",
    version: int = 1,
    labels: Sequence[str] = ("normal", "worn"),
    spec: InputSpec | None = None,
    width: int | None = None,
    with_reference: bool = False,
) -> Bundle:
    """A classifier fit to random rows of `spec`'s features (the motor's by default), or of
    `width` columns for a model its spec cannot feed, packed as `name` version `version`;
    `with_reference` stores the random rows' statistics for drift, as training does."""
    spec = spec or vibration_spec()
    rows = np.random.default_rng(seed).normal(size=(10 * len(labels), width or len(spec.features)))
    trained = train_classifier(rows.astype(np.float32), list(labels) * 10, seed=seed)
    return Bundle.create(
        name=name,
        version=version,
        labels=trained.labels,
        input=spec,
        model=trained.onnx,
        reference=reference(rows) if with_reference else None,
    )


SPLIT_SPEC = make_spec(
    vibration_spec().sensors,
    vibration_spec().rate_hz,
    256,
    256,
    extractors=[FeatureSpec(kind="raw", params={"size": 256})],
)
"""Raw windows of the simulated motor an agent runs by default, short ones (`split_net`)."""
SPLIT_SHAPE = (len(SPLIT_SPEC.sensors), SPLIT_SPEC.window)


def split_rows(count: int, seed: int) -> np.ndarray:
    """Random raw windows of `SPLIT_SPEC`."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(count, len(SPLIT_SPEC.features))).astype(np.float32)


def split_net(
    seed: int, *, name: str = "deep", threshold: float = 0.9
) -> tuple[Cnn1dExits, Bundle, Bundle]:
    """A `cnn1d_exits` net fit briefly to random windows (its answers are not right, only
    its own) and its head and `NAME-tail` bundles, cut after two blocks (`cut_net`)."""
    rows = split_rows(16, seed)
    trainer = TRAINERS.build("cnn1d_exits", {"shape": SPLIT_SHAPE, "epochs": 2})
    assert isinstance(trainer, Cnn1dExits)
    trainer.fit(rows, np.arange(len(rows)) % 2, seed=seed)
    return (trainer, *cut_net(trainer, name=name, threshold=threshold))


def cut_net(
    trainer: Cnn1dExits,
    *,
    name: str = "deep",
    threshold: float = 0.9,
    int8_from: np.ndarray | None = None,
) -> tuple[Bundle, Bundle]:
    """The head and `NAME-tail` bundles of `trainer`'s net cut after two blocks, the tensor
    int8 when rows `int8_from` set its range."""
    # The bytes are the float32 tensor's, (2 * filters) channels of a quarter of the window.
    tensor_bytes = 2 * 16 * (SPLIT_SHAPE[1] // 4) * 4
    plan = SplitPlan(
        at=2,
        blocks=4,
        point="conv2",
        threshold=threshold,
        early_share=0.5,
        expected_ms=1.0,
        offload_bytes=tensor_bytes // (1 if int8_from is None else 4),
    )
    head, tail = package_split(
        trainer, plan, name=name, labels=["left", "right"], spec=SPLIT_SPEC, int8_from=int8_from
    )
    assert head is not None and tail is not None
    return head, tail
