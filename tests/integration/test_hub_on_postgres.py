"""A hub process on PostgreSQL: migrated from the command line, an agent reporting to it, and
what it stored there found again by the next hub process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgestack.demo import LocalFleet, wait_until
from edgestack.hub.store import schema
from edgestack.hub.store.db import masked
from edgestack.protocol import DeviceView

pytestmark = pytest.mark.integration

DEVICE = "edge-1"


def edgestack(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgestack", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "500"},
    )


def test_a_hub_on_postgresql_stores_an_agents_reports_where_the_next_hub_finds_them(
    tmp_path: Path, postgres_url: str
) -> None:
    data_dir = tmp_path / "hub"
    migrated = edgestack(
        "hub", "migrate", "--data-dir", str(data_dir), "--database-url", postgres_url
    )

    with LocalFleet(tmp_path, [DEVICE]) as fleet:
        env = {"EDGESTACK_HUB_DATABASE_URL": postgres_url}
        fleet.start_hub(env=env)
        fleet.start_agents()

        def reporting() -> DeviceView | None:
            seen = fleet.client.devices()
            if not seen or seen[0].reported is None or seen[0].telemetry.batches == 0:
                return None
            return seen[0]

        before = wait_until(reporting, timeout_s=90, what="the agent to report telemetry")
        fleet.stop_agents()
        fleet.stop_hub()
        fleet.start_hub(env=env)
        after = fleet.client.device(DEVICE)

    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert f"{masked(postgres_url)}: new database at schema revision {schema.head()}" in (
        migrated.stdout
    )
    assert before.device_id == DEVICE
    assert after.enrolled_at == before.enrolled_at
    assert after.reported is not None
    assert after.telemetry.batches >= before.telemetry.batches
    # The data dir keeps the artifacts and keys; the database is elsewhere.
    assert not (data_dir / "hub.db").exists()
    assert (data_dir / "keys").is_dir()


def test_a_hub_given_a_database_it_cannot_use_says_which_and_how_to_fix_it(
    tmp_path: Path,
) -> None:
    refused = edgestack(
        "hub", "--data-dir", str(tmp_path / "hub"), "--database-url", "mysql://hub:s3cret@db/x"
    )

    assert refused.returncode == 1
    assert "mysql://hub:***@db/x names mysql, which the hub cannot use" in refused.stdout
    assert "s3cret" not in refused.stdout + refused.stderr
