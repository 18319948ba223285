"""Toy device data for federated tests (three classes of Gaussian rows, each device holding a
skewed share of them, mostly its own class, as devices in different regimes would) and Flower
messages as they arrive."""

import time
from pathlib import Path

import numpy as np
from flwr.app import DEFAULT_TTL, Message, MessageType, Metadata, RecordDict

from edgestack.federated import save_local_windows

WIDTH = 6
CLASSES = 3


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

    def files(self, workdir: Path, devices: int, rows: int) -> list[Path]:
        """One windows file per device, where its client reads them."""
        return [
            save_local_windows(workdir / f"device-{i}.npz", *self.device(i, rows))
            for i in range(devices)
        ]


def delivered(
    content: RecordDict,
    *,
    src: int,
    dst: int,
    reply_to: str = "",
    kind: str = MessageType.TRAIN,
) -> Message:
    """A message (or reply) as Flower hands it over, its metadata set by the SuperLink; no
    run of Flower's is needed to make one."""
    metadata = Metadata(
        run_id=1,
        message_id=f"{src}-{dst}-{reply_to}",
        src_node_id=src,
        dst_node_id=dst,
        reply_to_message_id=reply_to,
        group_id="1",
        created_at=time.time(),
        ttl=DEFAULT_TTL,
        message_type=kind,
    )
    return Message(content=content, metadata=metadata)
