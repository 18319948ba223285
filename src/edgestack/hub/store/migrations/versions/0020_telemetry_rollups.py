"""Retention: `telemetry_rollups`, what is kept per device, hour and bundle of the telemetry
batches removed for age, and `retention_totals`, the rows removed from each table so far.

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision: str | None = "0019"


def upgrade() -> None:
    op.create_table(
        "telemetry_rollups",
        # 64 bits on PostgreSQL, as its other ids since 0018; INTEGER keeps SQLite's rowid.
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("device_id", sa.String(63), sa.ForeignKey("devices.device_id"), nullable=False),
        sa.Column("hour", sa.DateTime(), nullable=False),
        sa.Column("bundle_digest", sa.String(64), nullable=False),
        sa.Column("batches", sa.BigInteger(), nullable=False),
        sa.Column("windows", sa.BigInteger(), nullable=False),
        sa.Column("predictions", sa.JSON(), nullable=False),
        sa.Column("confidence", sa.JSON(), nullable=False),
        sa.Column("labelled", sa.BigInteger(), nullable=False),
        sa.Column("right", sa.BigInteger(), nullable=False),
        sa.Column("raw_bytes", sa.BigInteger(), nullable=False),
        sa.Column("uplink_bytes", sa.BigInteger(), nullable=False),
        sa.Column("failed_chunks", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms_p95_max", sa.Float(), nullable=True),
        sa.UniqueConstraint("device_id", "hour", "bundle_digest"),
    )
    op.create_table(
        "retention_totals",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("removed", sa.BigInteger(), nullable=False),
        sa.Column("pending", sa.BigInteger(), nullable=False),
        sa.Column("last_run_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("retention_totals")
    op.drop_table("telemetry_rollups")
