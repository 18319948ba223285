"""An offload threshold calibrated on the held-out windows of the model a device runs: the
test split of the dataset version its lineage names, scored by that model."""

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from edgestack.bundle import Bundle, Lineage
from edgestack.client import HubClient
from edgestack.dataset import read_dataset
from edgestack.learning import train_classifier
from edgestack.learning.workflow import WorkflowError, held_out_probabilities
from edgestack.offload import calibrated, to_offload
from edgestack.protocol import BundleRef, DataSample, OffloadPolicy, SampleImport

from .factories import SPEC

LABELS = ("normal", "worn")


def _dataset(sdk: HubClient, rows: np.ndarray, labels: list[str]) -> int:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    samples = [
        DataSample(at=start + timedelta(seconds=i), label=label, features=row.tolist())
        for i, (row, label) in enumerate(zip(rows, labels, strict=True))
    ]
    sdk.import_samples("bench", SampleImport(batch_id=uuid.uuid4(), spec=SPEC, samples=samples))
    return sdk.freeze("bench").version


def _registered(sdk: HubClient, rows: np.ndarray, labels: list[str], version: int) -> BundleRef:
    trained = train_classifier(rows.astype(np.float32), labels, seed=0)
    bundle = Bundle.create(
        name="small",
        labels=trained.labels,
        input=SPEC,
        model=trained.onnx,
        lineage=Lineage(dataset="bench", dataset_version=version, trainer="logreg"),
    )
    view = sdk.register_model(bundle.pack())
    return BundleRef(name=view.name, version=view.version, digest=view.digest)


def test_the_threshold_sends_the_target_share_of_the_models_held_out_windows(
    sdk: HubClient,
) -> None:
    rng = np.random.default_rng(0)
    labels = [LABELS[i % 2] for i in range(200)]
    # Classes that overlap: the model is unsure of some windows, sure of others.
    rows = rng.normal(size=(200, 2)) + np.array(
        [[1.0, 0.0] if y == "worn" else [0.0, 0.0] for y in labels]
    )
    version = _dataset(sdk, rows, labels)
    ref = _registered(sdk, rows, labels, version)
    test_rows = read_dataset(sdk.dataset_parquet("bench", version)).test.sum()
    policy = OffloadPolicy(model=ref, tier="cloud", gate="margin", target_fraction=0.25)

    probabilities = held_out_probabilities(sdk, ref)
    policy = calibrated(policy, probabilities)

    assert probabilities.shape == (test_rows, 2)
    assert policy.threshold is not None
    sent = to_offload(probabilities, "margin", policy.threshold).sum()
    assert abs(sent - round(0.25 * test_rows)) <= 1


def test_a_model_without_a_dataset_in_its_lineage_cannot_be_calibrated(sdk: HubClient) -> None:
    rows = np.random.default_rng(1).normal(size=(20, 2)).astype(np.float32)
    trained = train_classifier(rows, list(LABELS) * 10, seed=0)
    bundle = Bundle.create(name="bare", labels=trained.labels, input=SPEC, model=trained.onnx)
    view = sdk.register_model(bundle.pack())

    with pytest.raises(WorkflowError, match="records no dataset"):
        held_out_probabilities(
            sdk, BundleRef(name="bare", version=view.version, digest=view.digest)
        )
