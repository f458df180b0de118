"""Alembic environment: the connection comes from the caller (see `pubdata.db.session.upgrade`)."""

from __future__ import annotations

from alembic import context

from pubdata.db.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through pubdata.db.session.upgrade()")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table.
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
