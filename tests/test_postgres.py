"""The metadata database on PostgreSQL: migrations, tenants, audit chain, catalogue writes.

Runs when ``PUBDATA_TEST_PG_URL`` points at a server (``scripts/test-postgres.sh`` starts one;
``test.sh`` does so automatically). Under CI a missing server is a failure, not a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from pubdata.audit import record, verify_chain
from pubdata.db.models import Tenant
from pubdata.db.session import current_revision, head_revision
from pubdata.workspace import Workspace

PG_URL = os.environ.get("PUBDATA_TEST_PG_URL")


@pytest.fixture
def pg_database() -> Iterator[str]:
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("PUBDATA_TEST_PG_URL is not set in CI")
        pytest.skip("no PostgreSQL server (run scripts/test-postgres.sh)")
    name = f"pubdata_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_workspace_on_postgres(tmp_path: Path, pg_database: str) -> None:
    workspace = Workspace.init(tmp_path / "home", db_url=pg_database)
    try:
        assert current_revision(workspace.engine) == head_revision()
        reopened = Workspace.open(tmp_path / "home")
        assert reopened.db_url == pg_database
        with workspace.sessions() as s, s.begin():
            assert s.scalar(select(func.count()).select_from(Tenant)) == 1 + 11 + 90
            record(s, "tester", "catalog.create", "x", n=1)
            record(s, "tester", "catalog.publish", "x")
        with workspace.sessions() as s:
            assert verify_chain(s)[0]
    finally:
        workspace.engine.dispose()
