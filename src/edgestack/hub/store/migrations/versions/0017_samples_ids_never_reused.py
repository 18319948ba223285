"""Sample ids are never reused: since samples can be removed, SQLite would otherwise give the
next sample the id of the newest one removed, and a client paging after it, or removing by an
id it read before, would meet another sample under it. PostgreSQL's sequences never give an
id twice, so there the table stays as it is: copying it would tie its ids to the copy's new
sequence, which would start again at 1.

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = "0017"
down_revision: str | None = "0016"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "samples", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "samples", recreate="always", table_kwargs={"sqlite_autoincrement": False}
    ):
        pass
