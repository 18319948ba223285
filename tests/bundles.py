"""Bundles of random classifiers, for tests that need a model to ship, swap or refuse rather
than one that is right."""

from collections.abc import Sequence

import numpy as np

from edgestack.bundle import Bundle, InputSpec
from edgestack.learning import train_classifier
from edgestack.monitoring import reference
from edgestack.processing import vibration_spec


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
