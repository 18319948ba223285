"""Devices' broker accounts: `devices.broker_hash`, the MQTT password's salted hash, null
for the devices enrolled before (they get one when they enrol again).

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision: str | None = "0020"


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("broker_hash", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("broker_hash")
