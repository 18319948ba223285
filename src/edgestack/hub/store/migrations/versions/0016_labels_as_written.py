"""Labels as their users write them (`Worn Bearing`, `1`): the label columns of samples,
review windows and feedback hold up to 64 characters, the most `protocol.Label` allows.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision: str | None = "0015"

_TABLES = ("samples", "review_windows", "feedback")


def upgrade() -> None:
    for table in _TABLES:
        # In batch mode: SQLite alters a column only by copying its table.
        with op.batch_alter_table(table) as batch:
            batch.alter_column("label", type_=sa.String(64), existing_type=sa.String(40))


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("label", type_=sa.String(40), existing_type=sa.String(64))
