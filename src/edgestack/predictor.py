"""Running a classifier exported to ONNX, the same way on a device and in evaluation.

Outside `edgestack.learning`, which re-exports it, so that a device runs models without
loading what trains them (scikit-learn, the ONNX converters, matplotlib): that would triple
an agent's memory."""

import json
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

__all__ = ["LABELS_KEY", "TENSOR_OUTPUT", "OnnxPredictor", "onnx_session"]

LABELS_KEY = "edgestack.labels"  # model metadata: the JSON list of class labels, in output order
TENSOR_OUTPUT = "intermediate"
"""The output of a split net's head that its tail takes (`Cnn1dExits.split`)."""


def onnx_session(
    model: bytes, providers: Sequence[str] = ("CPUExecutionProvider",)
) -> ort.InferenceSession:
    """An ONNX Runtime session of `model` on one thread, as a device runs it."""
    options = ort.SessionOptions()
    # One thread each: a device runs this beside its sensors, and batches are small.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model, sess_options=options, providers=list(providers))


class OnnxPredictor:
    """Class probabilities for feature rows, from an ONNX model on one CPU thread, or through
    `providers` (ONNX Runtime's execution providers, best first: what the first cannot run
    falls to the next).

        predictor = OnnxPredictor(trained.onnx, trained.labels)
        indices, probabilities = predictor.predict(rows)   # (k,) int64, (k, len(labels)) float32

    Probability columns follow `labels`. A model that records its labels (as `train_classifier`
    does) is refused when they differ from `labels`.
    """

    def __init__(
        self,
        model: bytes,
        labels: Sequence[str],
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        self._session = onnx_session(model, providers)
        self.labels = list(labels)
        recorded = self._session.get_modelmeta().custom_metadata_map.get(LABELS_KEY)
        if recorded is not None and json.loads(recorded) != self.labels:
            raise ValueError(
                f"labels {self.labels} differ from the labels the model was trained with, "
                f"{json.loads(recorded)}; pass the model's own labels, in its order"
            )
        model_input = self._session.get_inputs()[0]
        self._input = model_input.name
        width = model_input.shape[-1] if model_input.shape else None
        self.n_features = width if isinstance(width, int) else None
        # A split net's tail takes its head's tensor, (rows, channels, length), int8 or not.
        self.rank = len(model_input.shape) if model_input.shape else 2
        self.row_shape = tuple(model_input.shape[1:]) if model_input.shape else ()
        self.dtype = np.dtype(np.int8 if model_input.type == "tensor(int8)" else np.float32)
        outputs = [o.name for o in self._session.get_outputs()]
        self._output = "probabilities" if "probabilities" in outputs else outputs[-1]
        self.has_tensor = TENSOR_OUTPUT in outputs

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Most likely label index and every label's probability, for each row of `features`
        (for a split net's tail, each of its head's tensors)."""
        indices, probabilities, _ = self._run(features, [self._output])
        return indices, probabilities

    def predict_head(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For a split net's head (`has_tensor`): `predict`'s answer, its exit's, and the
        intermediate tensor its tail goes on from, one per row, in one run."""
        if not self.has_tensor:
            raise ValueError("the model gives no intermediate tensor; it is no split net's head")
        return self._run(features, [self._output, TENSOR_OUTPUT])

    def _run(
        self, features: np.ndarray, outputs: list[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if features.ndim != self.rank:
            expected = "(rows, features)" if self.rank == 2 else f"{self.rank} dimensions"
            raise ValueError(f"features: shape {features.shape}, expected {expected}")
        if self.n_features is not None and features.shape[-1] != self.n_features:
            raise ValueError(
                f"features: {features.shape[-1]} columns, the model takes {self.n_features}; "
                "compute them with the input spec the model was trained on"
            )
        if not len(features):
            empty = np.empty((0, len(self.labels)), dtype=np.float32)
            return np.empty(0, dtype=np.int64), empty, np.empty(0, dtype=np.float32)
        rows = np.ascontiguousarray(features, dtype=self.dtype)
        probabilities, *rest = self._session.run(outputs, {self._input: rows})
        probabilities = np.asarray(probabilities, dtype=np.float32)
        if probabilities.shape != (len(rows), len(self.labels)):
            raise ValueError(
                f"the model gives probabilities of shape {probabilities.shape} for "
                f"{len(self.labels)} labels; pass one label per model class"
            )
        tensor = np.asarray(rest[0]) if rest else np.empty(0, dtype=np.float32)
        return probabilities.argmax(axis=1).astype(np.int64, copy=False), probabilities, tensor
