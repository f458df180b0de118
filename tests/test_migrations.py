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
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    engine.dispose()
