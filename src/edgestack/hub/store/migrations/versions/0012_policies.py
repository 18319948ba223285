"""Policies: `policies`, what the hub does on its own when devices drift, and `policy_runs`,
each run from the windows it asked for to the model it rolled out.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision: str | None = "0011"


def upgrade() -> None:
    op.create_table(
        "policies",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "policy_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("policy", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("requests", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("rollout_id", sa.Integer(), nullable=True),
        sa.Column("model", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(4000), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_policy_runs_policy", "policy_runs", ["policy"])
    op.create_index("ix_policy_runs_state", "policy_runs", ["state"])


def downgrade() -> None:
    op.drop_index("ix_policy_runs_state", table_name="policy_runs")
    op.drop_index("ix_policy_runs_policy", table_name="policy_runs")
    op.drop_table("policy_runs")
    op.drop_table("policies")
