"""Alembic's script directory for the hub's database; see `edgestack.hub.store.schema`."""
