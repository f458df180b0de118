"""Request dependencies: the workspace the app was built for and a read session per request.

The workspace sits on ``app.state`` (set once by `create_app`) rather than in a module global, so
two apps for two workspaces can live in one process — the tests rely on that.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from pubdata.clock import now_on
from pubdata.workspace import Workspace


def get_workspace(request: Request) -> Workspace:
    workspace: Workspace = request.app.state.workspace
    return workspace


def get_now(request: Request) -> dt.datetime:
    """Now by the app's clock (the workspace's, unless a test or a replay pinned another)."""
    return now_on(request.app.state)


def get_session(workspace: Annotated[Workspace, Depends(get_workspace)]) -> Iterator[Session]:
    with workspace.sessions() as session:
        yield session


#: The largest row number a path may name: ids are 32-bit integers on PostgreSQL, and a larger
#: number would make the database, not the API, refuse it.
MAX_ID = 2**31 - 1

WorkspaceDep = Annotated[Workspace, Depends(get_workspace)]
SessionDep = Annotated[Session, Depends(get_session)]
NowDep = Annotated[dt.datetime, Depends(get_now)]
