"""`edgestack tokens`: an admin makes a viewer's token, the viewer reads with it through
EDGESTACK_TOKEN but changes nothing, and once revoked it reads nothing; `edgestack audit`
shows who made and revoked it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgestack.demo import LocalFleet

from .test_cli import bare_env, cli

pytestmark = pytest.mark.integration


def _as(fleet: LocalFleet, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI with `token` in EDGESTACK_TOKEN, beside the hub's own admin token."""
    env = bare_env(EDGESTACK_ADMIN_TOKEN=fleet.admin_token, EDGESTACK_TOKEN=token)
    return subprocess.run(
        [sys.executable, "-m", "edgestack", *args, "--hub", fleet.hub_url],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_a_viewer_token_made_with_the_cli_reads_until_revoked(tmp_path: Path) -> None:
    with LocalFleet(tmp_path, []) as fleet:
        fleet.start_hub()

        made = cli(fleet, "tokens", "create", "grafana", "--role", "viewer")
        secret = made.stdout.strip().splitlines()[-1]
        reads = _as(fleet, secret, "devices", "--json")
        writes = _as(fleet, secret, "tokens", "create", "mine", "--role", "admin")
        listed = cli(fleet, "tokens", "list")
        revoked = cli(fleet, "tokens", "revoke", "grafana")
        after = _as(fleet, secret, "devices", "--json")
        bad = cli(fleet, "tokens", "create", "Bad_Name", "--role", "viewer")
        audit = cli(fleet, "audit", "--device", "grafana", "--json")
        audit_table = cli(fleet, "audit", "--action", "tokens-revoke")

    assert made.returncode == 0, made.stdout + made.stderr
    assert secret.startswith("est_")
    assert reads.returncode == 0, reads.stdout
    assert reads.stdout.strip() == "[]"
    assert writes.returncode == 1
    assert "403" in writes.stdout and "viewer role" in " ".join(writes.stdout.split())
    assert "grafana" in listed.stdout and "viewer" in listed.stdout
    assert secret not in listed.stdout
    assert revoked.returncode == 0, revoked.stdout
    assert after.returncode == 1
    assert "401" in after.stdout and "revoked" in after.stdout
    assert bad.returncode == 2
    assert "--name 'Bad_Name'" in bad.stdout
    logged = json.loads(audit.stdout)
    assert [(a["action"], a["actor"]) for a in logged] == [
        ("tokens-revoke", "hub-admin"),
        ("tokens-create", "hub-admin"),
    ]
    assert secret not in audit.stdout
    assert "hub-admin (admin)" in audit_table.stdout
    assert "revoked_at: null ->" in audit_table.stdout
