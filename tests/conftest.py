"""Shared fixtures: real workspaces (SQLite + Delta) in temporary directories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from pubdata.workspace import Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.init(tmp_path / "home")


@pytest.fixture
def session(workspace: Workspace) -> Iterator[Session]:
    with workspace.sessions() as s, s.begin():
        yield s
