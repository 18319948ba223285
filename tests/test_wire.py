"""The wire as a contract: a change to any message bumps `PROTOCOL`.

The JSON schema of every model in `edgestack.protocol` is compared with the one recorded for
the current `PROTOCOL`. After a deliberate change, bump `PROTOCOL` (keep the previous
version's fixtures under tests/wire/v<N>/) and re-record the snapshot from the repository root:

    python tests/test_wire.py
"""

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from edgestack import protocol

SNAPSHOT = Path(__file__).parent / "wire" / f"schema-v{protocol.PROTOCOL}.json"


def _without_prose(schema: Any, *, names: bool = False) -> Any:
    """The schema less titles and descriptions, which change no message. Under `names` the
    keys are field or definition names, which stay whatever they are called."""
    if isinstance(schema, list):
        return [_without_prose(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {
        key: _without_prose(value, names=not names and key in ("properties", "$defs"))
        for key, value in schema.items()
        if names or key not in ("title", "description")
    }


def wire_schema() -> dict[str, Any]:
    """Every message model of the protocol by name, with the schema of what it validates."""
    models = {
        name: value
        for name in protocol.__all__
        if isinstance(value := getattr(protocol, name), type) and issubclass(value, BaseModel)
    }
    return {name: _without_prose(model.model_json_schema()) for name, model in models.items()}


def record() -> None:
    """Write the snapshot for the current `PROTOCOL`."""
    SNAPSHOT.write_text(json.dumps(wire_schema(), indent=1, sort_keys=True) + "\n")


def test_the_wire_matches_the_snapshot_of_its_protocol_version() -> None:
    assert SNAPSHOT.is_file(), (
        f"no wire snapshot for protocol {protocol.PROTOCOL}; re-record: python tests/test_wire.py"
    )
    recorded = json.loads(SNAPSHOT.read_text())

    current = wire_schema()

    changed = sorted(
        name for name in recorded.keys() | current.keys() if recorded.get(name) != current.get(name)
    )
    assert not changed, (
        f"the wire models {', '.join(changed)} changed since protocol {protocol.PROTOCOL} was "
        "recorded: bump PROTOCOL and re-record (python tests/test_wire.py)"
    )


def test_prose_is_no_wire_change_but_a_field_is() -> None:
    class Before(BaseModel):
        """One thing."""

        description: int

    class Reworded(BaseModel):
        """The same thing, said otherwise."""

        description: int

    class Wider(BaseModel):
        description: int
        title: str = ""

    assert _without_prose(Before.model_json_schema()) == _without_prose(
        Reworded.model_json_schema()
    )
    assert _without_prose(Before.model_json_schema()) != _without_prose(Wider.model_json_schema())


if __name__ == "__main__":
    sys.exit(record())
