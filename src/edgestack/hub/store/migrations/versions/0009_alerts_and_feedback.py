"""Alerts and feedback: `alert_rules` (rules an operator set), `alert_streaks` (batches in a
row past a rule, per device and signal), `alerts` (raised and cleared) and `feedback`
(labelled spans of ground truth, for live accuracy).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("signal", sa.String(32), primary_key=True),
        sa.Column("raise_at", sa.Float(), nullable=False),
        sa.Column("clear_at", sa.Float(), nullable=False),
        sa.Column("for_batches", sa.Integer(), nullable=False),
        sa.Column("clear_batches", sa.Integer(), nullable=False),
    )
    op.create_table(
        "alert_streaks",
        sa.Column("device_id", sa.String(63), sa.ForeignKey("devices.device_id"), primary_key=True),
        sa.Column("signal", sa.String(32), primary_key=True),
        sa.Column("batches", sa.Integer(), nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("device_id", sa.String(63), sa.ForeignKey("devices.device_id"), nullable=False),
        sa.Column("signal", sa.String(32), nullable=False),
        sa.Column("bundle_digest", sa.String(64), nullable=True),
        sa.Column("first_value", sa.Float(), nullable=False),
        sa.Column("worst_value", sa.Float(), nullable=False),
        sa.Column("last_value", sa.Float(), nullable=False),
        sa.Column("raised_at", sa.DateTime(), nullable=False),
        sa.Column("cleared_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_alerts_device_signal", "alerts", ["device_id", "signal"])
    op.create_index("ix_alerts_cleared_at", "alerts", ["cleared_at"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("device_id", sa.String(63), sa.ForeignKey("devices.device_id"), nullable=False),
        sa.Column("batch_id", sa.String(36), nullable=False),
        sa.Column("start", sa.DateTime(), nullable=False),
        sa.Column("end", sa.DateTime(), nullable=False),
        sa.Column("label", sa.String(40), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_feedback_device_start", "feedback", ["device_id", "start"])


def downgrade() -> None:
    op.drop_index("ix_feedback_device_start", table_name="feedback")
    op.drop_table("feedback")
    op.drop_index("ix_alerts_cleared_at", table_name="alerts")
    op.drop_index("ix_alerts_device_signal", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("alert_streaks")
    op.drop_table("alert_rules")
