"""An index of telemetry batches by device and sequence number: each batch a device sends has
the hub read its latest ones, newest first, for the rolling input drift.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision: str | None = "0007"


def upgrade() -> None:
    op.create_index("ix_telemetry_batches_device_seq", "telemetry_batches", ["device_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_telemetry_batches_device_seq", table_name="telemetry_batches")
