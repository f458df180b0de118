"""Every migration upgrades, downgrades and upgrades again, and the result matches the models."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from pubdata.db.models import Base
from pubdata.db.session import _alembic_config, head_revision, make_engine, upgrade

#: Tables the migrations make that no model describes: the catalogue's FTS5 index and its shadows.
NOT_MODELLED = "catalog_search"


def _modelled(name: str | None, kind: str, _parents: object) -> bool:
    return not (kind == "table" and name is not None and name.startswith(NOT_MODELLED))


def test_each_revision_round_trips_and_head_matches_the_models(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    config = _alembic_config()
    revisions = [r.revision for r in ScriptDirectory.from_config(config).walk_revisions()][::-1]
    assert revisions[-1] == head_revision()
    for revision in revisions:
        upgrade(engine, revision)
        tables = set(inspect(engine).get_table_names())
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "-1")
        upgrade(engine, revision)
        assert set(inspect(engine).get_table_names()) == tables, revision
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": _modelled})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
    engine.dispose()
