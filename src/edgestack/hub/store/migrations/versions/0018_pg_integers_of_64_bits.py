"""On PostgreSQL, integers hold 64 bits, as SQLite's always did: its INTEGER stops at
2**31 - 1, which ids of a fleet's telemetry pass within weeks and which the API's bounds
(64-bit ids, `after_id`, versions) pass at once, answering with an error where SQLite answers
nothing found. SQLite is left as it is.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision: str | None = "0017"

# Every INTEGER column of the schema at revision 0017.
_COLUMNS = {
    "alert_rules": ["for_batches", "clear_batches"],
    "alert_streaks": ["batches"],
    "alerts": ["id"],
    "api_tokens": ["id"],
    "audit_log": ["id"],
    "dataset_versions": ["id", "version", "last_sample_id"],
    "devices": ["desired_version"],
    "events": ["id"],
    "feedback": ["id"],
    "jobs": ["id"],
    "login_sessions": ["id", "token_id"],
    "models": ["id", "version", "size_bytes"],
    "policy_runs": ["id", "job_id", "rollout_id"],
    "received_batches": ["id", "accepted"],
    "review_windows": ["id", "request_id"],
    "rollouts": ["id", "version", "wave"],
    "samples": ["id"],
    "telemetry_batches": ["id", "seq"],
    "webhook_deliveries": ["id", "webhook_id", "event_id", "attempt", "status_code"],
    "webhooks": ["id", "delivered_id"],
}


def upgrade() -> None:
    _retype(sa.Integer(), sa.BigInteger(), "BIGINT")


def downgrade() -> None:
    _retype(sa.BigInteger(), sa.Integer(), "INTEGER")


def _retype(before: sa.types.TypeEngine[int], after: sa.types.TypeEngine[int], name: str) -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    for table, columns in _COLUMNS.items():
        for column in columns:
            op.alter_column(table, column, type_=after, existing_type=before)
        if "id" in columns:
            # The sequence behind the id keeps its own type, and with it its largest value.
            sequence = connection.scalar(sa.select(sa.func.pg_get_serial_sequence(table, "id")))
            op.execute(f"ALTER SEQUENCE {sequence} AS {name}")
