"""Alembic environment: the connection comes from the caller (see `pubdata.db.session.upgrade`)."""

from __future__ import annotations

from alembic import context

from pubdata.db.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through pubdata.db.session.upgrade()")


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Leave the catalogue's full-text index (SQLite FTS5 tables, made by hand in 0007) to itself."""
    return not (type_ == "table" and (name or "").startswith("catalog_search"))


context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    include_object=include_object,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table.
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
