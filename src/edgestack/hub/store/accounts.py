"""Devices' broker accounts: user name = device id, password = the device token, held here
only as the salted PBKDF2-SHA512 hash brokers read (Mosquitto's `$7$` password format)."""

import base64
import hashlib
import hmac
import os

from sqlalchemy import select
from sqlalchemy.orm import Session

from edgestack.hub.store.tables import DeviceRow

__all__ = ["ITERATIONS", "hash_password", "listed", "verify"]

ITERATIONS = 101
"""PBKDF2 rounds, as `mosquitto_passwd` writes them: the broker hashes a password at every
connection, and the password is a random token, not one a person chose."""
_SALT_BYTES = 12


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """`$7$<iterations>$<salt>$<hash>`, both in base64, as Mosquitto's password file holds
    them."""
    salt = os.urandom(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS)
    return f"$7${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify(password: str, hashed: str) -> bool:
    """Whether `password` is the one `hashed` (from `hash_password`) was made of."""
    try:
        _, seven, rounds, salt, digest = hashed.split("$")
        expected = base64.b64decode(digest, validate=True)
        made = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt), int(rounds))
    except ValueError:
        return False
    return seven == "7" and hmac.compare_digest(made, expected)


def listed(session: Session) -> list[tuple[str, str]]:
    """`(device id, password hash)` of every device with a broker account, by id."""
    rows = session.execute(
        select(DeviceRow.device_id, DeviceRow.broker_hash)
        .where(DeviceRow.broker_hash.is_not(None))
        .order_by(DeviceRow.device_id)
    )
    return [(device_id, hashed) for device_id, hashed in rows if hashed is not None]
