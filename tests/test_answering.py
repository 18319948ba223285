"""Serving from an event loop: a bundle is fetched and loaded once however many requests name
it at once, a request naming it wrongly costs no fetch, and only so many stay loaded."""

import asyncio
from datetime import timedelta

import numpy as np
import pytest

from bundles import random_bundle
from edgestack.bundle import Bundle, TrustedKeys, digest
from edgestack.hub.signing import HubKeys
from edgestack.processing import vibration_spec
from edgestack.protocol import BundleRef, InferenceRequest
from edgestack.serving import Answering, ModelServer, UnknownModel

pytestmark = pytest.mark.anyio

ROWS = np.random.default_rng(1).normal(size=(2, len(vibration_spec().features))).tolist()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> HubKeys:
    return HubKeys(tmp_path_factory.mktemp("hub-keys"))


class Store:
    """Signed bundles by digest, counting each fetch."""

    def __init__(self, keys: HubKeys, count: int) -> None:
        self.fetched: list[str] = []
        self.packed: dict[str, bytes] = {}
        self.refs: list[BundleRef] = []
        for seed in range(count):
            bundle = random_bundle(seed, name=f"big-{seed}")
            signed = Bundle(keys.sign(bundle.manifest, ttl=timedelta(days=1)), bundle.model)
            packed = signed.pack()
            self.packed[digest(packed)] = packed
            self.refs.append(BundleRef(name=f"big-{seed}", version=1, digest=digest(packed)))

    async def fetch(self, ref: BundleRef) -> bytes:
        self.fetched.append(ref.name)
        await asyncio.sleep(0)  # as a download would, letting other requests in
        return self.packed[ref.digest]


def _answering(keys: HubKeys, max_models: int = 8) -> Answering:
    return Answering(ModelServer("edge", TrustedKeys(keys.public())), max_models=max_models)


async def test_requests_at_once_for_one_bundle_fetch_it_once(keys: HubKeys) -> None:
    store, answering = Store(keys, 1), _answering(keys)
    request = InferenceRequest(model=store.refs[0], rows=ROWS)

    answers = await asyncio.gather(*(answering.answer(request, store.fetch) for _ in range(3)))

    assert store.fetched == ["big-0"]
    assert [len(a.labels) for a in answers] == [2, 2, 2]


async def test_the_least_recently_used_bundle_makes_room_and_comes_back_when_asked(
    keys: HubKeys,
) -> None:
    store, answering = Store(keys, 3), _answering(keys, max_models=2)
    first, second, third = (InferenceRequest(model=ref, rows=ROWS) for ref in store.refs)

    for request in (first, second, first, third):
        await answering.answer(request, store.fetch)
    served = {ref.name for ref in answering.server.models}
    await answering.answer(second, store.fetch)

    assert served == {"big-0", "big-2"}
    assert store.fetched == ["big-0", "big-1", "big-2", "big-1"]


async def test_a_request_naming_a_bundle_wrongly_is_refused_without_fetching_again(
    keys: HubKeys,
) -> None:
    store, answering = Store(keys, 1), _answering(keys)
    wrong = InferenceRequest(model=store.refs[0].model_copy(update={"name": "other"}), rows=ROWS)

    for _ in range(2):
        with pytest.raises(UnknownModel, match="is big-0 v1, not other v1"):
            await answering.answer(wrong, store.fetch)

    assert store.fetched == ["other"]
