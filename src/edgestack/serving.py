"""Answering devices' offloaded windows with bigger models: what an edge node (an agent
started with `--serve`) and the hub's cloud tier share.

A bundle is served only once it is verified as an agent verifies one before it runs it: its
bytes against their digest, its model against the manifest's hash, the manifest's signature
against the hub keys the server trusts. Answering runs a model, so it blocks: callers run it
off their event loop.

    server = ModelServer("edge", TrustedKeys(pinned_keys))
    ref = server.load(packed_bundle, digest)
    answer = server.answer(InferenceRequest(model=ref, rows=feature_rows))

A split net's tail is served the same way; its requests carry the head's tensors
(`tensors_of`) instead of rows.

Over HTTP, the edge node and the hub answer through one `Answering`, which loads a bundle the
first time a request names it and keeps both the loading and the model off the event loop.
"""

import asyncio
import base64
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
from pydantic import TypeAdapter, ValidationError

from edgestack.bundle import Bundle, InputSpec, Manifest, SplitPlan, TrustedKeys
from edgestack.predictor import OnnxPredictor
from edgestack.protocol import (
    BundleRef,
    InferenceAnswer,
    InferenceRequest,
    IntermediateTensors,
    Label,
    RowsKind,
    ServingTier,
    TensorDtype,
)

__all__ = [
    "MAX_SERVED",
    "Answering",
    "Fetch",
    "ModelServer",
    "ServingError",
    "UnknownModel",
    "offload_request",
    "refusal",
    "rows_kind",
    "serving_providers",
    "tensors_of",
]

_BEST_FIRST = ("CUDAExecutionProvider", "CPUExecutionProvider")
_LABELS = TypeAdapter(list[Label])


class ServingError(ValueError):
    """A request a server refuses; `field` names the part of the request that is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class UnknownModel(ServingError):
    """A request for a model this server does not serve."""


def rows_kind(spec: InputSpec) -> RowsKind:
    """What a model of `spec` is sent: raw windows when its rows hold raw samples (a `raw`
    extractor), else window features, so raw samples leave a device only when needed."""
    return "raw" if any(extractor.kind == "raw" for extractor in spec.extractors) else "features"


def serving_providers() -> list[str]:
    """ONNX Runtime's execution providers to serve with, best first: CUDA where this machine
    has a GPU ONNX Runtime can use, then the CPU."""
    available = set(ort.get_available_providers())
    return [provider for provider in _BEST_FIRST if provider in available]


def tensors_of(tensor: np.ndarray, plan: SplitPlan) -> IntermediateTensors:
    """The intermediate `tensor` of a split net's head, one window a row, as its tail's
    request carries it: int8 with the `plan`'s scale and zero point when the head gives int8."""
    dtype: TensorDtype = "int8" if tensor.dtype == np.int8 else "float32"
    values = np.ascontiguousarray(tensor, dtype=np.dtype(dtype).newbyteorder("<"))
    return IntermediateTensors(
        dtype=dtype,
        shape=list(tensor.shape[1:]),
        data=base64.b64encode(values.tobytes()).decode(),
        scale=plan.scale if dtype == "int8" else None,
        zero_point=plan.zero_point if dtype == "int8" else None,
    )


def offload_request(model: BundleRef, input: RowsKind | SplitPlan, rows: np.ndarray) -> bytes:
    """The body of the request that offloads `rows`, one window a row, to `model`: the rows
    of `input`'s kind, or a split head's tensors with the plan that cut it."""
    if isinstance(input, SplitPlan):
        request = InferenceRequest(model=model, tensors=tensors_of(rows, input))
    else:
        request = InferenceRequest(model=model, input=input, rows=rows.tolist())
    return request.model_dump_json().encode()


@dataclass(frozen=True)
class _Tail:
    """What a split net's tail takes: its head's tensor, one window's `shape`, of `dtype`,
    int8 standing for `scale * (q - zero_point)`."""

    shape: tuple[int, ...]
    dtype: str
    scale: float | None
    zero_point: int | None


@dataclass(frozen=True)
class _Served:
    ref: BundleRef
    predictor: OnnxPredictor
    takes: RowsKind
    width: int
    tail: _Tail | None


class ModelServer:
    """The bundles a `tier` serves, by digest, each verified against `trusted` (keys that a
    bundle's key chain endorses are learnt into it, as on a device)."""

    def __init__(
        self,
        tier: ServingTier,
        trusted: TrustedKeys,
        *,
        providers: Sequence[str] | None = None,
    ) -> None:
        self.tier = tier
        self._trusted = trusted
        self._providers = list(providers) if providers is not None else serving_providers()
        self._served: dict[str, _Served] = {}

    @property
    def models(self) -> list[BundleRef]:
        """The bundles served, in the order they were loaded."""
        return [served.ref for served in self._served.values()]

    def serves(self, ref: BundleRef) -> bool:
        """Whether `ref` is loaded here, its name and version as its digest's manifest says."""
        served = self._served.get(ref.digest)
        return served is not None and served.ref == ref

    def unload(self, digest: str) -> None:
        """Stop serving bundle `digest`, if it is served."""
        self._served.pop(digest, None)

    def load(self, data: bytes, digest: str) -> BundleRef:
        """Verify the packed bundle `data` and serve it; raise `BundleError` (or its
        `SignatureError`) naming what is wrong, serving nothing new, when it does not hold."""
        bundle = Bundle.unpack(data, expected_digest=digest)
        self._trusted.verify(bundle.manifest)
        manifest = bundle.manifest
        ref = BundleRef(name=manifest.name, version=manifest.version, digest=digest)
        if manifest.target != "onnx":
            raise ValueError(
                f"bundle {ref.name} v{ref.version} is {manifest.target.upper()} source for a "
                "microcontroller; a server runs ONNX models: load an ONNX version of it"
            )
        try:
            _LABELS.validate_python(manifest.labels)
        except ValidationError as exc:
            raise ValueError(
                f"bundle {ref.name} v{ref.version}: a label is no answer's label "
                f"({exc.errors()[0]['msg']}); retrain it with printable labels of 1 to 64 "
                "characters"
            ) from exc
        predictor = OnnxPredictor(bundle.model, manifest.labels, self._providers)
        tail = _tail(ref, manifest, predictor)
        width = len(manifest.input.features)
        if tail is None and predictor.n_features is not None and predictor.n_features != width:
            raise ValueError(
                f"bundle {ref.name} v{ref.version}: its input spec gives {width} features, "
                f"its model takes {predictor.n_features}; repack it with the spec the model "
                "was trained on"
            )
        self._served[digest] = _Served(ref, predictor, rows_kind(manifest.input), width, tail)
        return ref

    def answer(self, request: InferenceRequest) -> InferenceAnswer:
        """The served model's label and its probability for each of the request's rows;
        `ServingError` naming the field when the request does not fit the model."""
        served = self._served.get(request.model.digest)
        if served is None or served.ref != request.model:
            raise UnknownModel(
                "model",
                f"{request.model.name} v{request.model.version} ({request.model.digest[:12]}) "
                "is not served here; load it on this server first",
            )
        rows = _inputs(served, request)
        started = time.perf_counter()
        indices, probabilities = served.predictor.predict(rows)
        latency_ms = (time.perf_counter() - started) * 1000
        chosen = probabilities[np.arange(len(indices)), indices]
        return InferenceAnswer(
            labels=[served.predictor.labels[i] for i in indices],
            # float32 rounding can carry a probability a hair past 1.
            confidences=np.clip(chosen, 0.0, 1.0).tolist(),
            tier=self.tier,
            latency_ms=latency_ms,
        )


def _tail(ref: BundleRef, manifest: Manifest, predictor: OnnxPredictor) -> _Tail | None:
    """What the bundle takes when it is a split net's tail (its model takes a tensor, not
    rows: `package_split`'s `NAME-tail`); None for a model of rows."""
    if manifest.split is None or predictor.rank == 2:
        return None
    shape = predictor.row_shape
    if not all(isinstance(size, int) for size in shape):
        raise ValueError(
            f"bundle {ref.name} v{ref.version}: its tail takes a tensor of shape {list(shape)}; "
            "export it with a fixed shape after the window axis"
        )
    if (predictor.dtype == np.int8) != (manifest.split.scale is not None):
        recorded = "no int8 scale" if manifest.split.scale is None else "an int8 scale"
        raise ValueError(
            f"bundle {ref.name} v{ref.version}: its tail takes {predictor.dtype} and its "
            f"manifest's split records {recorded}; package head and tail together with "
            "package_split"
        )
    return _Tail(
        tuple(int(size) for size in shape),
        str(predictor.dtype),
        manifest.split.scale,
        manifest.split.zero_point,
    )


def _inputs(served: _Served, request: InferenceRequest) -> np.ndarray:
    """The request's rows, or its tensors for a tail, as `served`'s model takes them;
    `ServingError` naming the field that does not fit."""
    name = f"{served.ref.name} v{served.ref.version}"
    tail, tensors = served.tail, request.tensors
    if tensors is None and tail is not None:
        raise ServingError(
            "rows",
            f"{name} is a split net's tail and takes its head's tensors; send tensors of "
            f"shape {list(tail.shape)} ({tail.dtype})",
        )
    if tensors is None:
        if request.input != served.takes:
            raise ServingError(
                "input",
                f"{served.ref.name} takes {served.takes} rows, the request holds "
                f"{request.input}; send input {served.takes}",
            )
        rows = np.asarray(request.rows, dtype=np.float32)
        if rows.shape[1] != served.width:
            raise ServingError(
                "rows",
                f"rows of {rows.shape[1]} values, {served.ref.name} takes {served.width}; "
                "compute them with the model's input spec",
            )
        return rows
    if tail is None:
        raise ServingError(
            "tensors",
            f"{name} is no split net's tail; send its {served.takes} as rows, or name the "
            "NAME-tail bundle registered with its head",
        )
    if tensors.dtype != tail.dtype or tuple(tensors.shape) != tail.shape:
        raise ServingError(
            "tensors",
            f"{tensors.dtype} of shape {tensors.shape}, {name} takes {tail.dtype} of shape "
            f"{list(tail.shape)}; send the tensors of the head packaged with this tail",
        )
    if tail.scale is not None and not (
        tensors.zero_point == tail.zero_point
        and math.isclose(tensors.scale or 0.0, tail.scale, rel_tol=1e-6)
    ):
        raise ServingError(
            "tensors.scale",
            f"scale {tensors.scale} and zero point {tensors.zero_point}, {name} was cut with "
            f"{tail.scale} and {tail.zero_point}; deploy the head packaged with this tail",
        )
    values = np.frombuffer(tensors.raw(), dtype=np.dtype(tail.dtype).newbyteorder("<"))
    return values.reshape(-1, *tail.shape)


Fetch = Callable[[BundleRef], Awaitable[bytes]]
"""How a server comes by the packed bundle a request names: the hub reads its own store, an
edge node downloads it from the hub it reports to."""


MAX_SERVED = 8
"""Models an `Answering` keeps loaded; the least recently used goes to make room."""


class Answering:
    """Answers `InferenceRequest`s with `server` from an event loop: a model named for the first
    time is fetched and loaded, once however many requests name it at once, and both loading
    and answering run in worker threads. At most `max_models` stay loaded, so callers naming
    bundle after bundle cannot fill the server's memory."""

    def __init__(self, server: ModelServer, *, max_models: int = MAX_SERVED) -> None:
        self.server = server
        self.max_models = max_models
        self._loading: dict[str, asyncio.Lock] = {}
        self._used: OrderedDict[str, None] = OrderedDict()

    async def answer(self, request: InferenceRequest, fetch: Fetch) -> InferenceAnswer:
        """The served model's answer to `request`, loading it with what `fetch` brings first
        when it is not served yet. Raises what `ModelServer.load` and `ModelServer.answer`
        raise, and what `fetch` raises; `refusal` says how to answer each over HTTP."""
        await self._ensure(request.model, fetch)
        try:
            return await asyncio.to_thread(self.server.answer, request)
        except UnknownModel:
            if self.server.serves(request.model):
                raise
        # Made room for another between loading and answering: once more.
        await self._ensure(request.model, fetch)
        return await asyncio.to_thread(self.server.answer, request)

    async def _ensure(self, ref: BundleRef, fetch: Fetch) -> None:
        if not self.server.serves(ref):
            lock = self._loading.setdefault(ref.digest, asyncio.Lock())
            try:
                async with lock:
                    if not self.server.serves(ref):
                        await self._load(ref, fetch)
            finally:
                self._loading.pop(ref.digest, None)
        if ref.digest in self._used:
            self._used.move_to_end(ref.digest)

    async def _load(self, ref: BundleRef, fetch: Fetch) -> None:
        loaded = next((m for m in self.server.models if m.digest == ref.digest), None)
        if loaded is None:
            loaded = await asyncio.to_thread(self.server.load, await fetch(ref), ref.digest)
            self._used[ref.digest] = None
            while len(self._used) > self.max_models:
                oldest, _ = self._used.popitem(last=False)
                self.server.unload(oldest)
        if loaded != ref:
            # Not fetched again for every such request: the digest says which bundle it is.
            raise UnknownModel(
                "model",
                f"bundle {ref.digest[:12]} is {loaded.name} v{loaded.version}, not "
                f"{ref.name} v{ref.version}; name it as its manifest does",
            )


def refusal(exc: Exception) -> tuple[int, str] | None:
    """The HTTP status and one-line reason that answer a request `Answering.answer` failed with
    `exc`; None for an exception that is no refusal of the request."""
    if isinstance(exc, UnknownModel):
        return 404, str(exc)
    if isinstance(exc, ServingError):
        return 422, str(exc)
    if isinstance(exc, ValueError):
        # The bundle itself cannot be served here: its signature, its target or its labels.
        return 409, f"model: {exc}"
    return None
