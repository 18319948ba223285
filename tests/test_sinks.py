"""The speak sink: alarms said aloud into WAV files by espeak-ng, other events not."""

import shutil
import uuid
import wave
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edgestack.protocol import Event
from edgestack.sinks import SINKS

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed: apt-get install espeak-ng (make test does, as root)",
)


def _event(kind: str = "alarm_raised") -> Event:
    return Event(
        event_id=uuid.uuid4(),
        at=datetime(2026, 1, 1, 8, 30, tzinfo=UTC),
        kind=kind,  # type: ignore[arg-type]
        severity="warning",
        label="bearing_wear",
        confidence=0.93,
        message="bearing_wear for 4 windows",
    )


def test_an_alarm_is_said_into_a_wav_file_and_other_events_are_not(tmp_path: Path) -> None:
    sink = SINKS.build("speak", {"wav_dir": str(tmp_path / "said")})

    sink.emit(_event())
    sink.emit(_event("model_loaded"))
    sink.emit(_event())
    sink.close()  # waits for what is being said

    said = sorted((tmp_path / "said").iterdir())
    assert len(said) == 2  # one file per alarm, the model loading said nothing
    for wav in said:
        assert wav.name.endswith(".wav") and "alarm_raised" in wav.name
        with wave.open(str(wav)) as audio:
            seconds = audio.getnframes() / audio.getframerate()
        assert 0.5 < seconds < 10  # a sentence, not silence
    assert sink.failed == 0


def test_a_sink_that_cannot_speak_says_why_naming_the_field(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")

    with pytest.raises(ValueError, match="wav_dir: cannot write"):
        SINKS.build("speak", {"wav_dir": str(blocked / "said")})
    with pytest.raises(ValueError, match="words_per_minute"):
        SINKS.build("speak", {"words_per_minute": 5})
