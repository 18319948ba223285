"""Events the hub raises itself may concern no device: `events.device_id` becomes nullable.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.alter_column("device_id", existing_type=sa.String(63), nullable=True)


def downgrade() -> None:
    # The older schema has no place for an event about no device.
    op.execute("DELETE FROM events WHERE device_id IS NULL")
    with op.batch_alter_table("events") as batch:
        batch.alter_column("device_id", existing_type=sa.String(63), nullable=False)
