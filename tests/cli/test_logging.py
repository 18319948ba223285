"""What the long-running commands log: their own lines, not their libraries' chatter."""

import logging
from pathlib import Path

import pytest

from edgestack.cli.common import setup_logging
from edgestack.hub.store import Database
from edgestack.hub.store.db import sqlite_url


def test_a_new_hub_database_logs_no_line_per_schema_revision(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    setup_logging()
    caplog.set_level(logging.INFO)

    database = Database(sqlite_url(tmp_path / "hub.db"))
    database.close()

    assert database.schema_change.before is None
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []
