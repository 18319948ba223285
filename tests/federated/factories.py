"""Toy device data for federated tests (three classes of Gaussian rows, each device holding a
skewed share of them, mostly its own class, as devices in different regimes would), Flower
messages as they arrive, and clients answering them in this process."""

import copy
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from flwr.app import DEFAULT_TTL, Context, Error, Message, MessageType, Metadata, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid
from flwr.supercore.run import Run

from edgestack.bundle import InputSpec
from edgestack.federated import DATA_PATH, save_local_windows

WIDTH = 6
CLASSES = 3
NAMES = np.array(["bearing", "imbalance", "normal"])
"""Label names of classes 0, 1, 2: sorted, so a run's class index is the same."""


class Regimes:
    """Rows drawn around one fixed centre per class."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)
        self._centres = self._rng.normal(0.0, 2.0, (CLASSES, WIDTH))

    def draw(self, rows: int, share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`rows` rows whose classes follow the probabilities `share`."""
        y = self._rng.choice(CLASSES, size=rows, p=share)
        x = self._centres[y] + self._rng.normal(0.0, 1.0, (rows, WIDTH))
        return x.astype(np.float32), y.astype(np.int64)

    def device(self, index: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Device `index`'s rows: 80% of its own class, 10% of each other."""
        share = np.full(CLASSES, 0.1)
        share[index % CLASSES] = 0.8
        return self.draw(rows, share)

    def balanced(self, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows of every class alike, to score a model on."""
        return self.draw(rows, np.full(CLASSES, 1 / CLASSES))

    def files(
        self, workdir: Path, devices: int, rows: int, spec: InputSpec | None = None
    ) -> list[Path]:
        """One windows file per device, where its client reads them, labelled by name."""
        files = []
        for i in range(devices):
            x, y = self.device(i, rows)
            files.append(save_local_windows(workdir / f"device-{i}.npz", x, NAMES[y], spec))
        return files


def delivered(
    content: RecordDict,
    *,
    src: int,
    dst: int,
    reply_to: str = "",
    kind: str = MessageType.TRAIN,
    group: str = "1",
) -> Message:
    """A message (or reply) as Flower hands it over, its metadata set by the SuperLink; no
    run of Flower's is needed to make one."""
    metadata = Metadata(
        run_id=1,
        message_id=f"{src}-{dst}-{reply_to}-{uuid.uuid4()}",
        src_node_id=src,
        dst_node_id=dst,
        reply_to_message_id=reply_to,
        group_id=group,
        created_at=time.time(),
        ttl=DEFAULT_TTL,
        message_type=kind,
    )
    return Message(content=content, metadata=metadata)


class LocalGrid(Grid):
    """Clients of `app`, one per windows file (node ids 1, 2, ...), answering in this process
    each message as a SuperNode would deliver it: no Flower process is started. What each
    node received is kept in `received`, what it answered in `replies`. A `late` node's
    first answer comes after the timeout, so the server never gets it."""

    def __init__(self, files: list[Path], app: ClientApp, *, late: set[int] = frozenset()) -> None:
        self._app = app
        self._late = set(late)
        self._contexts = {
            node: Context(
                run_id=1,
                node_id=node,
                node_config={DATA_PATH: str(path)},
                state=RecordDict(),
                run_config={},
            )
            for node, path in enumerate(files, start=1)
        }
        self.received: dict[int, list[Message]] = {node: [] for node in self._contexts}
        self.replies: dict[int, list[Message]] = {node: [] for node in self._contexts}

    def get_node_ids(self) -> Iterable[int]:
        return list(self._contexts)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        replies = []
        for sent in messages:
            node = sent.metadata.dst_node_id
            message = delivered(
                # A copy, as a SuperNode gets its own: SecAgg+ sends one content to every
                # node, and its mod pops from it.
                copy.deepcopy(sent.content),
                src=0,
                dst=node,
                kind=sent.metadata.message_type,
                group=sent.metadata.group_id,
            )
            self.received[node].append(message)
            try:
                reply = self._app(message, self._contexts[node])
            except Exception as error:  # a SuperNode sends a failing app's error back
                reply = Message(Error(code=0, reason=repr(error)), reply_to=message)
            self.replies[node].append(reply)
            if node in self._late:
                self._late.discard(node)
                continue
            replies.append(reply)
        return replies

    def set_run(self, run: Run) -> None:
        raise NotImplementedError

    @property
    def run(self) -> Run:
        return Run.create_empty(1)

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        raise NotImplementedError

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        raise NotImplementedError

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        raise NotImplementedError
