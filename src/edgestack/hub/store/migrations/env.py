"""Runs the revisions on the connection `schema.upgrade` hands over; never on its own URL."""

from alembic import context

from edgestack.hub.store import tables  # noqa: F401  registers every table on Base.metadata
from edgestack.hub.store.db import Base

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=Base.metadata,
    # SQLite alters little in place; batch mode copies a changed table into a new one.
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
