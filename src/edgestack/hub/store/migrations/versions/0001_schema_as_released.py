"""The schema as first released, before the hub kept migrations.

Revision ID: 0001
Revises: none
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("device_id", sa.String(63), primary_key=True),
        sa.Column("token_sha256", sa.String(64), nullable=False, index=True),
        sa.Column("enrolled_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=True),
        sa.Column("hardware", sa.JSON(), nullable=False),
        sa.Column("desired", sa.JSON(), nullable=False),
        sa.Column("desired_version", sa.Integer(), nullable=False),
        sa.Column("reported", sa.JSON(), nullable=True),
        sa.Column("telemetry", sa.JSON(), nullable=False),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False, index=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("registered_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("name", "version"),
    )
    op.create_table(
        "received_batches",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("device_id", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("device_id", "kind", "batch_id"),
    )
    op.create_table(
        "specs",
        sa.Column("fingerprint", sa.String(16), primary_key=True),
        sa.Column("spec", sa.JSON(), nullable=False),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset", sa.String(63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", sa.String(16), sa.ForeignKey("specs.fingerprint"), nullable=False),
        sa.Column("last_sample_id", sa.Integer(), nullable=False),
        sa.Column("frozen_at", sa.DateTime(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("file", sa.String(255), nullable=False),
        sa.UniqueConstraint("dataset", "version"),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "device_id",
            sa.String(63),
            sa.ForeignKey("devices.device_id"),
            nullable=False,
            index=True,
        ),
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
    )
    op.create_table(
        "samples",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("device_id", sa.String(63), nullable=False, index=True),
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("dataset", sa.String(63), nullable=False, index=True),
        sa.Column("spec", sa.String(16), sa.ForeignKey("specs.fingerprint"), nullable=False),
        sa.Column("label", sa.String(40), nullable=False),
        sa.Column("split", sa.String(5), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
    )
    op.create_index("ix_samples_label_device", "samples", ["label", "device_id"])
    op.create_table(
        "telemetry_batches",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("device_id", sa.String(63), sa.ForeignKey("devices.device_id"), nullable=False),
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("start", sa.DateTime(), nullable=False),
        sa.Column("end", sa.DateTime(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("batch", sa.JSON(), nullable=False),
        sa.UniqueConstraint("device_id", "batch_id"),
    )


def downgrade() -> None:
    for table in (
        "telemetry_batches",
        "samples",
        "events",
        "dataset_versions",
        "specs",
        "received_batches",
        "models",
        "devices",
    ):
        op.drop_table(table)
