"""The metadata database on PostgreSQL: migrations, tenants, audit chain, catalogue writes.

Runs when ``PUBDATA_TEST_PG_URL`` points at a server (``scripts/test-postgres.sh`` starts one;
``test.sh`` does so automatically). Under CI a missing server is a failure, not a skip.
"""

from __future__ import annotations

from sqlalchemy import func, select

from pubdata.audit import record, verify_chain
from pubdata.db.models import Tenant
from pubdata.db.session import current_revision, head_revision
from pubdata.workspace import Workspace


def test_workspace_on_postgres(pg_workspace: Workspace) -> None:
    workspace = pg_workspace
    assert current_revision(workspace.engine) == head_revision()
    reopened = Workspace.open(workspace.home)
    assert reopened.db_url == workspace.db_url
    with workspace.sessions() as s, s.begin():
        assert s.scalar(select(func.count()).select_from(Tenant)) == 1 + 11 + 90
        record(s, "tester", "catalog.create", "x", n=1)
        record(s, "tester", "catalog.publish", "x")
    with workspace.sessions() as s:
        assert verify_chain(s)[0]
    reopened.engine.dispose()
