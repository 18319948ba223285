"""The hub signs what it registers: `models.submitted_digest` keeps the digest of the bytes a
bundle was registered with, so registering them again finds the signed version.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("submitted_digest", sa.String(64), nullable=True))
        batch.create_index("ix_models_submitted_digest", ["submitted_digest"])


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_index("ix_models_submitted_digest")
        batch.drop_column("submitted_digest")
