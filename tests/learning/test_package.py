import numpy as np

from edgestack.learning import fit, package
from edgestack.monitoring import DriftSketch, psi
from edgestack.processing import vibration_spec
from edgestack.sensing import FAULTS, Quality

from .motor import motor_features


def test_a_packaged_model_carries_reference_statistics_of_its_training_rows() -> None:
    x, faults = motor_features(seconds=2.0)
    result = fit("decision_tree", x, [FAULTS[k] for k in faults], seed=0)
    spec = vibration_spec()

    bundle = package(result, name="motor", spec=spec, runs=5)

    ref = bundle.manifest.reference
    assert ref is not None
    assert ref.rows == len(result.train.y)
    assert len(ref.edges) == len(spec.features) == x.shape[1]
    # the live sketch of the training rows themselves gives back the reference's shares
    sketch = DriftSketch(ref)
    sketch.update(result.train.x, Quality())
    assert np.allclose(sketch.counts / ref.rows, ref.shares, atol=1e-6)
    assert np.nanmax(psi(ref, sketch.counts)) < 1e-3
