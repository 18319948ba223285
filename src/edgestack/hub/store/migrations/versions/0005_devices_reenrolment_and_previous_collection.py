"""Identity and what a device may write: `devices.reenrolment` ("waiting" for, or
"approved" by, an operator) and `devices.previous_collect`, the collection asked for before
the current one, whose last samples may still arrive.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("reenrolment", sa.String(8), nullable=True))
        batch.add_column(sa.Column("previous_collect", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("previous_collect")
        batch.drop_column("reenrolment")
