"""Where a device's events go besides the hub: a local JSON-lines log, an MQTT topic, a voice.

The hub always gets every event through the agent's outbox; sinks are extra, local
consumers (a PLC listening on the plant's broker, a log a technician can read offline).
A sink never blocks the hot path and never raises on a failed delivery: it counts it.

    sink = SINKS.build("jsonl", {"path": "events.jsonl"})
    sink.emit(event)
"""

import json
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Annotated, Protocol

import paho.mqtt.client as mqtt
from pydantic import Field

from edgestack.protocol import Event
from edgestack.registry import Registry

__all__ = ["SINKS", "JsonLinesSink", "MqttSink", "Sink", "SpeakSink"]

log = logging.getLogger("edgestack.sinks")


class Sink(Protocol):
    failed: int

    def emit(self, event: Event) -> None:
        """Deliver one event, or count it in `failed`; never block for long, never raise."""
        ...

    def close(self) -> None: ...


SINKS: Registry[Sink] = Registry("sink", group="edgestack.sinks")


@SINKS.register("jsonl")
class JsonLinesSink:
    """Appends each event as one JSON line to a file, flushed at once.

    Raises ValueError naming `path` when the file cannot be opened for writing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.failed = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise ValueError(
                f"path: cannot write {path}: {exc.strerror or exc}; "
                "choose a file in a folder this process may write to"
            ) from None

    def emit(self, event: Event) -> None:
        try:
            self._file.write(event.model_dump_json() + "\n")
            self._file.flush()
        except OSError as exc:
            self.failed += 1
            log.warning("event not written to %s: %s", self.path, exc)

    def close(self) -> None:
        self._file.close()


@SINKS.register("mqtt")
class MqttSink:
    """Publishes each event as JSON to `topic` (QoS 1); paho queues while the broker is away."""

    def __init__(
        self,
        topic: Annotated[str, Field(min_length=1)],
        host: str = "127.0.0.1",
        port: Annotated[int, Field(ge=1, le=65535)] = 1883,
    ) -> None:
        self.topic = topic
        self.failed = 0
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self._client.max_queued_messages_set(10_000)
        self._client.connect_async(host, port)
        self._client.loop_start()

    def emit(self, event: Event) -> None:
        payload = json.dumps(event.model_dump(mode="json"))
        info = self._client.publish(self.topic, payload, qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self.failed += 1

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


_SPEAKER = "espeak-ng"
_SPEAK_WAIT_S = 10.0  # what `close` waits for sentences still being said


@SINKS.register("speak")
class SpeakSink:
    """Says alarms aloud with espeak-ng (Debian's `espeak-ng` package): to the sound device,
    or, with `wav_dir`, into one WAV file per alarm there. Only events of `kinds` are said.
    espeak-ng runs as a child process that is never waited for, so the hot path goes on.

    Raises ValueError naming the field when espeak-ng is not installed or `wav_dir` cannot be
    written to."""

    def __init__(
        self,
        wav_dir: Path | None = None,
        kinds: Annotated[tuple[str, ...], Field(min_length=1)] = ("alarm_raised",),
        voice: Annotated[str, Field(pattern=r"^[A-Za-z0-9+_-]{1,40}$")] = "en",
        words_per_minute: Annotated[int, Field(ge=80, le=450)] = 160,
    ) -> None:
        speaker = shutil.which(_SPEAKER)
        if speaker is None:
            raise ValueError(
                f"kind: speak needs {_SPEAKER}, which is not installed; "
                f"install it (apt-get install {_SPEAKER}) or use another sink"
            )
        if wav_dir is not None:
            try:
                wav_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ValueError(
                    f"wav_dir: cannot write {wav_dir}: {exc.strerror or exc}; "
                    "choose a folder this process may write to"
                ) from None
        self.wav_dir = wav_dir
        self.kinds = frozenset(kinds)
        self.failed = 0
        self._command = [speaker, "-v", voice, "-s", str(words_per_minute)]
        self._speaking: list[subprocess.Popen[bytes]] = []

    def emit(self, event: Event) -> None:
        if event.kind not in self.kinds:
            return
        self._speaking = [p for p in self._speaking if p.poll() is None]
        out = [] if self.wav_dir is None else ["-w", str(self._wav(event))]
        try:
            self._speaking.append(
                subprocess.Popen(
                    [*self._command, *out, "--", _sentence(event)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        except OSError as exc:
            self.failed += 1
            log.warning("alarm not spoken: %s", exc)

    def _wav(self, event: Event) -> Path:
        assert self.wav_dir is not None
        return (
            self.wav_dir / f"{event.at:%Y%m%dT%H%M%S%f}-{event.kind}-{event.event_id.hex[:8]}.wav"
        )

    def close(self) -> None:
        """Let what is being said finish, for a while; then stop it."""
        for speaking in self._speaking:
            try:
                speaking.wait(timeout=_SPEAK_WAIT_S)
            except subprocess.TimeoutExpired:
                speaking.kill()
                speaking.wait()
        self._speaking = []


def _sentence(event: Event) -> str:
    """What is said of `event`: its kind, label and confidence in words."""
    said = event.kind.replace("_", " ")
    if event.label:
        said += f": {event.label.replace('_', ' ')}"
    if event.confidence is not None:
        said += f", {round(event.confidence * 100)} percent sure"
    return said
