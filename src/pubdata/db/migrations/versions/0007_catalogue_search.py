"""Full-text index of the catalogue on SQLite: an FTS5 ``trigram`` table kept current by triggers.

One row per entry (rowid = entry id): name, code, abstract, and the titles and names of its fields
joined by U+001F so that no phrase matches across two of them. Triggers on ``catalog_entries`` and
``catalog_fields`` rewrite an entry's row whenever one of those columns changes, whoever writes
(the catalogue service, a bulk insert, a migration). PostgreSQL gets nothing here: its search is
``ILIKE`` (see `pubdata.catalog.search`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 16:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: The row of entry ``{id}``, as the FTS table stores it.
_ROW = """
INSERT INTO catalog_search (rowid, name, code, abstract, fields)
SELECT e.id, e.name, e.code, e.abstract,
       coalesce((SELECT group_concat(f.title || char(31) || f.name, char(31))
                 FROM catalog_fields AS f WHERE f.entry_id = e.id), '')
FROM catalog_entries AS e WHERE e.id = {id};
"""

_STATEMENTS = (
    "CREATE VIRTUAL TABLE catalog_search USING fts5(name, code, abstract, fields, tokenize='trigram')",
    _ROW.replace("WHERE e.id = {id};", "").strip(),
    f"""CREATE TRIGGER catalog_search_entry_insert AFTER INSERT ON catalog_entries BEGIN
{_ROW.format(id="new.id")}
END""",
    f"""CREATE TRIGGER catalog_search_entry_update AFTER UPDATE OF name, code, abstract ON catalog_entries
BEGIN
DELETE FROM catalog_search WHERE rowid = old.id;
{_ROW.format(id="new.id")}
END""",
    """CREATE TRIGGER catalog_search_entry_delete AFTER DELETE ON catalog_entries BEGIN
DELETE FROM catalog_search WHERE rowid = old.id;
END""",
    f"""CREATE TRIGGER catalog_search_field_insert AFTER INSERT ON catalog_fields BEGIN
DELETE FROM catalog_search WHERE rowid = new.entry_id;
{_ROW.format(id="new.entry_id")}
END""",
    f"""CREATE TRIGGER catalog_search_field_update AFTER UPDATE OF entry_id, name, title ON catalog_fields
BEGIN
DELETE FROM catalog_search WHERE rowid IN (old.entry_id, new.entry_id);
{_ROW.format(id="old.entry_id")}
{_ROW.format(id="new.entry_id AND new.entry_id <> old.entry_id")}
END""",
    f"""CREATE TRIGGER catalog_search_field_delete AFTER DELETE ON catalog_fields BEGIN
DELETE FROM catalog_search WHERE rowid = old.entry_id;
{_ROW.format(id="old.entry_id")}
END""",
)

_TRIGGERS = ("entry_insert", "entry_update", "entry_delete", "field_insert", "field_update", "field_delete")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for statement in _STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS catalog_search_{name}")
    op.execute("DROP TABLE IF EXISTS catalog_search")
