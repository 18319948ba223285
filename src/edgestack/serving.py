"""Answering devices' offloaded windows with bigger models: what an edge node (an agent
started with `--serve`) and the hub's cloud tier share.

A bundle is served only once it is verified as an agent verifies one before it runs it: its
bytes against their digest, its model against the manifest's hash, the manifest's signature
against the hub keys the server trusts. Answering runs a model, so it blocks: callers run it
off their event loop.

    server = ModelServer("edge", TrustedKeys(pinned_keys))
    ref = server.load(packed_bundle, digest)
    answer = server.answer(InferenceRequest(model=ref, rows=feature_rows))

Over HTTP, the edge node and the hub answer through one `Answering`, which loads a bundle the
first time a request names it and keeps both the loading and the model off the event loop.
"""

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
from pydantic import TypeAdapter, ValidationError

from edgestack.bundle import Bundle, InputSpec, TrustedKeys
from edgestack.predictor import OnnxPredictor
from edgestack.protocol import (
    BundleRef,
    InferenceAnswer,
    InferenceRequest,
    Label,
    RowsKind,
    ServingTier,
)

__all__ = [
    "MAX_SERVED",
    "Answering",
    "Fetch",
    "ModelServer",
    "ServingError",
    "UnknownModel",
    "refusal",
    "rows_kind",
    "serving_providers",
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


@dataclass(frozen=True)
class _Served:
    ref: BundleRef
    predictor: OnnxPredictor
    takes: RowsKind
    width: int


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
        width = len(manifest.input.features)
        if predictor.n_features is not None and predictor.n_features != width:
            raise ValueError(
                f"bundle {ref.name} v{ref.version}: its input spec gives {width} features, "
                f"its model takes {predictor.n_features}; repack it with the spec the model "
                "was trained on"
            )
        self._served[digest] = _Served(ref, predictor, rows_kind(manifest.input), width)
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
