"""Shared fixtures: real workspaces (SQLite + Delta) in temporary directories."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from pubdata.clock import Clock, fixed_clock, parse_moment
from pubdata.conformance import pytest_collection_modifyitems  # noqa: F401 - the REQ properties hook
from pubdata.workspace import Workspace

# Hypothesis's per-example deadline measures the machine, not the code: on two shared cores a
# 0.5 ms example sometimes takes 260 ms. Properties are about answers; time limits have their own tests.
settings.register_profile("pubdata", deadline=None)
settings.load_profile("pubdata")

# The CLI speaks the locale's language; the suite reads English unless a test sets a locale itself.
for _variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
    os.environ.pop(_variable, None)
os.environ["LANG"] = "C.UTF-8"

#: The instant the clock-bound tests (``@pytest.mark.clock``) run at, unless ``PUBDATA_TEST_NOW``
#: (an ISO date or date-time) moves it: `test.sh` runs them again at other dates, so that a suite
#: that passes today passes next month. No test reads the wall clock.
DEFAULT_TEST_NOW = "2026-12-01T02:00:00Z"


@pytest.fixture(scope="session")
def pinned_now() -> dt.datetime:
    """The one "now" of a test's data and app: the demo is built at it, the app judges at it."""
    return parse_moment(os.environ.get("PUBDATA_TEST_NOW") or DEFAULT_TEST_NOW)


@pytest.fixture(scope="session")
def pinned_clock(pinned_now: dt.datetime) -> Clock:
    return fixed_clock(pinned_now)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.init(tmp_path / "home")


@pytest.fixture
def session(workspace: Workspace) -> Iterator[Session]:
    with workspace.sessions() as s, s.begin():
        yield s


@pytest.fixture
def pg_database() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database, dropped afterwards.

    Needs ``PUBDATA_TEST_PG_URL`` (``scripts/test-postgres.sh`` starts a server; ``test.sh`` does so
    automatically). Under CI a missing server is a failure, not a skip.
    """
    admin_url = os.environ.get("PUBDATA_TEST_PG_URL")
    if not admin_url:
        if os.environ.get("CI"):
            pytest.fail("PUBDATA_TEST_PG_URL is not set in CI")
        pytest.skip("no PostgreSQL server (run scripts/test-postgres.sh)")
    name = f"pubdata_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_workspace(tmp_path: Path, pg_database: str) -> Iterator[Workspace]:
    workspace = Workspace.init(tmp_path / "pg-home", db_url=pg_database)
    try:
        yield workspace
    finally:
        workspace.engine.dispose()
