"""Options every command group shares, declared once so their help reads the same everywhere."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from pubdata.workspace import Workspace


def default_actor() -> str:
    """Who the audit log names when ``--actor`` is not given: the login name behind the CLI."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"


Home = Annotated[
    Path | None,
    typer.Option("--home", help="Workspace directory [default: $PUBDATA_HOME, else ./pubdata-home]."),
]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON (UTF-8).")]
Actor = Annotated[
    str,
    typer.Option(
        "--actor", "--operator", show_default="cli:$USER", help="Who is acting, as recorded in the audit log."
    ),
]
#: Default of `Actor` options, resolved once per process.
ACTOR = default_actor()


def open_workspace(home: Path | None) -> Workspace:
    return Workspace.open(home)


@contextmanager
def reading(home: Path | None) -> Iterator[tuple[Workspace, Session]]:
    """A workspace and a session that only reads."""
    workspace = open_workspace(home)
    with workspace.sessions() as session:
        yield workspace, session


@contextmanager
def writing(home: Path | None) -> Iterator[tuple[Workspace, Session]]:
    """A workspace and a session whose work commits as one unit, or not at all."""
    workspace = open_workspace(home)
    with workspace.sessions() as session, session.begin():
        yield workspace, session
