"""Windows for review: `review_windows`, the recent windows devices sent when asked, with
what their model predicted, until someone labels them into a dataset.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision: str | None = "0010"


def upgrade() -> None:
    op.create_table(
        "review_windows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("device_id", sa.String(63), sa.ForeignKey("devices.device_id"), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("spec", sa.String(16), sa.ForeignKey("specs.fingerprint"), nullable=False),
        sa.Column("bundle_digest", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("predicted", sa.String(64), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("label", sa.String(40), nullable=True),
        sa.Column("dataset", sa.String(63), nullable=True),
    )
    op.create_index("ix_review_windows_device_id", "review_windows", ["device_id"])
    op.create_index("ix_review_windows_label", "review_windows", ["label"])


def downgrade() -> None:
    op.drop_index("ix_review_windows_label", table_name="review_windows")
    op.drop_index("ix_review_windows_device_id", table_name="review_windows")
    op.drop_table("review_windows")
