"""What every exported model here keeps to: the pinned opsets, one output `probabilities`,
and the class labels in its metadata."""

import json
from collections.abc import Sequence

import onnx

from edgestack.predictor import LABELS_KEY

__all__ = ["OPSET", "TARGET_OPSET", "keep_outputs", "with_labels"]

# Pinned, so a device with an older ONNX Runtime loads what a newer trainer exports.
OPSET = 17
TARGET_OPSET = {"": OPSET, "ai.onnx.ml": 3}


def keep_outputs(model: onnx.ModelProto, names: Sequence[str]) -> onnx.ModelProto:
    """`model` with only the outputs `names`, without the nodes and constants that fed only
    the others.

    Converters add outputs such as the predicted label; one output keeps the contract of every
    model alike and gives optimisers nothing to carry along."""
    graph = model.graph
    kept = [o for o in graph.output if o.name in names]
    if len(kept) != len(names):
        present = [o.name for o in graph.output]
        raise ValueError(f"model outputs {present} lack some of {list(names)}")
    needed = set(names)
    nodes = []
    for node in reversed(graph.node):
        if needed.intersection(node.output):
            nodes.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(nodes))
    del graph.output[:]
    graph.output.extend(kept)
    used = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(used)
    return model


def with_labels(model: bytes, labels: Sequence[str]) -> bytes:
    """`model` recording `labels`, in the order of its probability columns, in its metadata."""
    proto = onnx.load_from_string(model)
    for prop in list(proto.metadata_props):
        if prop.key == LABELS_KEY:
            proto.metadata_props.remove(prop)
    proto.metadata_props.add(key=LABELS_KEY, value=json.dumps(list(labels)))
    return proto.SerializeToString()
