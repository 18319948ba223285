"""The broker's side of devices over MQTT: the account files a broker reads, rebuilt from
the database, and the command that has the broker reread them.

The files are Mosquitto's (`password_file` and `acl_file`); the topic layout and the ACL's
rule, a device under its own user name only, are the same on any broker (EMQX writes
`${username}` where Mosquitto writes `%u`).
"""

import logging
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from edgestack.hub.settings import HubSettings
from edgestack.hub.store import Database, accounts
from edgestack.mqttwire import ROOT, acl_patterns

__all__ = ["ACL_FILE", "PASSWORD_FILE", "acl", "refresh", "write_accounts"]

log = logging.getLogger("edgestack.hub.broker")

PASSWORD_FILE = "passwd"
ACL_FILE = "acl"


def acl(hub_user: str) -> str:
    """The ACL file: the hub reads and writes every device's topics, each device only its own."""
    lines = [f"user {hub_user}", f"topic readwrite {ROOT}/#", ""]
    lines += [f"pattern {right} {topic.format(user='%u')}" for right, topic in acl_patterns()]
    return "\n".join(lines) + "\n"


def write_accounts(folder: Path, settings: HubSettings, devices: list[tuple[str, str]]) -> None:
    """Write the password and ACL files into `folder`, each replaced in one step, so the
    broker never reads half of one."""
    folder.mkdir(parents=True, exist_ok=True)
    hub = accounts.hash_password(settings.broker_password.get_secret_value())
    entries = [f"{settings.broker_user}:{hub}", *(f"{user}:{hashed}" for user, hashed in devices)]
    _replace(folder / PASSWORD_FILE, "\n".join(entries) + "\n")
    _replace(folder / ACL_FILE, acl(settings.broker_user))


def refresh(db: Database, settings: HubSettings) -> None:
    """Rewrite the account files from the database and have the broker reread them; nothing
    without `broker_accounts`. A reload that fails is logged: the devices enrolled since
    wait for the next one."""
    if settings.broker_accounts is None:
        return
    with db.session() as session:
        devices = accounts.listed(session)
    write_accounts(settings.broker_accounts, settings, devices)
    if settings.broker_reload:
        done = subprocess.run(
            shlex.split(settings.broker_reload), capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            log.error(
                "broker_reload `%s` exited %d: %s",
                settings.broker_reload,
                done.returncode,
                done.stderr.strip()[-500:],
            )


def _replace(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    # The broker may run as a user of its own; the hashes are salted and slow to reverse.
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
