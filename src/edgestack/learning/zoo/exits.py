"""A 1D-CNN with an early exit (BranchyNet-style), cut in two where a split falls: the device
runs the head and its exit, and a window the exit is not sure of goes on, as the head's
intermediate tensor, to the tail on an edge node or the hub."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from pydantic import Field

from edgestack.learning.trainer import TRAINERS
from edgestack.learning.zoo._rows import as_rows, check_fold
from edgestack.learning.zoo.nets import Cnn1d, Positive, Rate
from edgestack.predictor import TENSOR_OUTPUT

if TYPE_CHECKING:
    import torch

    from edgestack.learning.zoo._exits import MultiExit

__all__ = ["BLOCKS", "Block", "Cnn1dExits", "SplitModel"]

BLOCKS = ("conv1", "conv2", "conv3", "classifier")
"""The blocks of the net in order; a split after the first `at` of them runs those on the
device and the rest on a server (`at` 0: all on the server, 4: all on the device)."""

_INT8 = (-128, 127)


@dataclass(frozen=True)
class SplitModel:
    """The net cut after its first `at` blocks, as two ONNX graphs.

    `head` takes `features` `[None, F]` and gives `probabilities`, the exit's, and
    `intermediate` `[None, *shape]`; `tail` takes that `intermediate` and gives the final
    `probabilities`. When `scale` is set, `intermediate` is int8, `scale * (q - zero_point)`
    standing for the float tensor, a quarter of its bytes.
    """

    at: int
    head: bytes
    tail: bytes
    shape: tuple[int, ...]
    scale: float | None = None
    zero_point: int | None = None

    @property
    def tensor_bytes(self) -> int:
        """Bytes of `intermediate` for one window: what an offloaded window sends."""
        return int(np.prod(self.shape)) * (4 if self.scale is None else 1)


@dataclass(frozen=True)
class Block:
    """One block of the net (or its exit) alone, as ONNX: input `given` `[None, *takes]`,
    output `made` `[None, *gives]`; what `split.measure_costs` times."""

    name: str
    onnx: bytes
    takes: tuple[int, ...]
    gives: tuple[int, ...]


@TRAINERS.register("cnn1d_exits")
class Cnn1dExits(Cnn1d):
    """`cnn1d`'s blocks, trained with the same validation, early stopping and augmentation,
    the first two halving the time axis, with an exit classifier after `exit_after` of them.

    Both exits train together on the sum of their losses, the exit's weighted by
    `exit_weight`; the validation rows judge the final exit, the answer that counts when the
    whole net runs. `module`, `predict_proba` and `to_onnx` are the whole net; `exit_proba`
    is the exit's answer alone and `split(at)` cuts the net for a device and a server.
    """

    def __init__(
        self,
        shape: tuple[Positive, Annotated[int, Field(ge=8)]],
        filters: Positive = 16,
        epochs: Positive = 200,
        batch_size: Positive = 8,
        learning_rate: Rate = 3e-3,
        validation: Annotated[float, Field(ge=0, lt=1)] = 0.2,
        patience: Positive = 30,
        augment: bool = True,
        exit_after: Annotated[int, Field(ge=1, le=2)] = 2,
        exit_weight: Annotated[float, Field(gt=0, le=1)] = 0.5,
    ) -> None:
        super().__init__(
            shape, filters, epochs, batch_size, learning_rate, validation, patience, augment
        )
        self.exit_after = exit_after
        self.exit_weight = exit_weight

    def build(self, x: np.ndarray, classes: int) -> "MultiExit":
        from edgestack.learning.zoo import _exits

        check_fold(self.shape, x)
        channels, size = self.shape
        return _exits.multi_exit_cnn1d(x, classes, (channels, size), self.filters, self.exit_after)

    def loss(self, output: "torch.Tensor", target: "torch.Tensor") -> "torch.Tensor":
        from torch.nn.functional import cross_entropy

        if output.ndim == 2:
            return cross_entropy(output, target)
        early, final = output[:, 0], output[:, 1]
        return self.exit_weight * cross_entropy(early, target) + cross_entropy(final, target)

    def exit_proba(self, x: np.ndarray) -> np.ndarray:
        """The exit's class probabilities for rows `x`, float32 `(n, classes)`."""
        from edgestack.learning.zoo import _exits

        head = _exits.Head(self._net("exit_proba"), self.exit_after)
        probabilities, _ = _torch_run(head, as_rows(x))
        return probabilities

    def split(self, at: int, *, int8_from: np.ndarray | None = None) -> SplitModel:
        """The net cut after its first `at` blocks (from `exit_after` to 3: the device keeps
        the exit, the server has a tail). With rows `int8_from`, the intermediate tensor is
        int8, its scale and zero point set from the range it takes on those rows."""
        import torch

        from edgestack.learning.zoo import _exits, _torch

        net = self._net("split")
        if not self.exit_after <= at < len(BLOCKS):
            raise ValueError(
                f"at: {at}; a split keeps the exit on the device and a tail for the server: "
                f"give {self.exit_after} to {len(BLOCKS) - 1}, or run the whole net "
                "(to_onnx) on one side"
            )
        head = _exits.Head(net, at)
        tail = _exits.Tail(net, at)
        example = np.zeros((2, self.n_features), dtype=np.float32)
        shape = tuple(_torch_run(head, example)[1].shape[1:])
        head_graph = _torch.export_graph(
            head, torch.from_numpy(example), "features", ["probabilities", _TENSOR]
        )
        tail_graph = _torch.export_graph(tail, torch.zeros(2, *shape), _TENSOR, ["probabilities"])
        scale, zero_point = None, None
        if int8_from is not None:
            _, seen = _torch_run(head, as_rows(int8_from))
            scale, zero_point = _int8_range(float(seen.min()), float(seen.max()))
            _quantise_output(head_graph, scale, zero_point)
            _dequantise_input(tail_graph, scale, zero_point)
        return SplitModel(
            at,
            head_graph.SerializeToString(),
            tail_graph.SerializeToString(),
            shape,
            scale,
            zero_point,
        )

    def blocks(self) -> list[Block]:
        """Each block of the net alone, in the order of `BLOCKS`, then the exit."""
        import torch

        from edgestack.learning.zoo import _torch

        net = self._net("blocks").eval()
        inputs = [torch.zeros(2, self.n_features)]
        with torch.no_grad():
            for block in net.blocks[:-1]:
                inputs.append(block(inputs[-1]))
        parts = [
            *zip(BLOCKS, net.blocks, inputs, strict=True),
            ("exit", net.exit, inputs[self.exit_after]),
        ]
        made = []
        for name, block, given in parts:
            with torch.no_grad():
                gives = tuple(block(given).shape[1:])
            graph = _torch.export_graph(block, given, "given", ["made"])
            made.append(Block(name, graph.SerializeToString(), tuple(given.shape[1:]), gives))
        return made

    def _net(self, action: str) -> "MultiExit":
        from edgestack.learning.zoo._exits import MultiExit

        module = self._fitted(action)
        assert isinstance(module, MultiExit), "build() makes every module of this trainer"
        return module


_TENSOR = TENSOR_OUTPUT
_FLOAT_TENSOR = "intermediate_float"


def _torch_run(module: "torch.nn.Module", x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A head's two outputs for rows `x`, without gradients."""
    import torch

    module.eval()
    with torch.no_grad():
        first, second = module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
    return first.numpy(), second.numpy()


def _int8_range(low: float, high: float) -> tuple[float, int]:
    """Scale and zero point mapping `[low, high]` (widened to hold 0) onto int8."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / (_INT8[1] - _INT8[0]) or 1.0
    zero_point = int(np.clip(round(_INT8[0] - low / scale), *_INT8))
    return scale, zero_point


def _constants(graph: onnx.GraphProto, scale: float, zero_point: int) -> tuple[str, str]:
    names = (f"{_TENSOR}_scale", f"{_TENSOR}_zero_point")
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(scale, dtype=np.float32), names[0]),
            numpy_helper.from_array(np.array(zero_point, dtype=np.int8), names[1]),
        ]
    )
    return names


def _renamed(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]


def _quantise_output(model: onnx.ModelProto, scale: float, zero_point: int) -> None:
    """`model`'s output `intermediate` made int8 by a QuantizeLinear at the end."""
    graph = model.graph
    _renamed(graph, _TENSOR, _FLOAT_TENSOR)
    scale_name, zero_name = _constants(graph, scale, zero_point)
    graph.node.append(
        helper.make_node("QuantizeLinear", [_FLOAT_TENSOR, scale_name, zero_name], [_TENSOR])
    )
    output = next(o for o in graph.output if o.name == _TENSOR)
    output.type.tensor_type.elem_type = TensorProto.INT8


def _dequantise_input(model: onnx.ModelProto, scale: float, zero_point: int) -> None:
    """`model`'s input `intermediate` taken as int8, turned back to float first thing."""
    graph = model.graph
    _renamed(graph, _TENSOR, _FLOAT_TENSOR)
    scale_name, zero_name = _constants(graph, scale, zero_point)
    graph.node.insert(
        0, helper.make_node("DequantizeLinear", [_TENSOR, scale_name, zero_name], [_FLOAT_TENSOR])
    )
    graph.input[0].type.tensor_type.elem_type = TensorProto.INT8
