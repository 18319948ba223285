"""`desired.rules` became the operator's override, null for the app's own rules. Twins stored
before held the wire defaults there whether anyone set them or not, which would now override
every app's rules: those become null.

Revision ID: 0004
Revises: 0003
"""

import json
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"

# RuleParams() as released before this revision.
_OLD_DEFAULTS = {
    "normal_label": "normal",
    "min_confidence": 0.7,
    "trigger_windows": 4,
    "clear_windows": 8,
}


def upgrade() -> None:
    _rewrite(lambda rules: None if rules == _OLD_DEFAULTS else rules)


def downgrade() -> None:
    _rewrite(lambda rules: _OLD_DEFAULTS if rules is None else rules)


def _rewrite(change: Callable[[object], object]) -> None:
    connection = op.get_bind()
    devices = sa.table("devices", sa.column("device_id", sa.String), sa.column("desired", sa.JSON))
    for device_id, desired in connection.execute(sa.select(devices.c.device_id, devices.c.desired)):
        state = json.loads(desired) if isinstance(desired, str) else dict(desired)
        rules = change(state.get("rules"))
        if rules != state.get("rules"):
            state["rules"] = rules
            connection.execute(
                devices.update().where(devices.c.device_id == device_id).values(desired=state)
            )
