"""Options every command group shares, declared once so their help reads the same everywhere."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from pubdata.audit.acting import acting_through
from pubdata.clock import Clock, fixed_clock, parse_moment, system_clock
from pubdata.workflow.refusals import CLI, Asker, refusals_audited
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
#: Replays and tests: the instant the app (and a demo's cases) take for now; hidden from the help,
#: since a person serving the platform wants the wall clock.
Now = Annotated[
    str | None,
    typer.Option("--now", hidden=True, help="Pin the clock at an ISO date-time."),
]
#: Default of `Actor` options, resolved once per process.
ACTOR = default_actor()


#: The clock of this invocation: the system clock unless the root's hidden ``--now`` pinned it.
_clock: list[Clock] = [system_clock]


def pin_clock(now: str | None) -> None:
    """Set this invocation's clock (the root callback calls it for every command)."""
    _clock[0] = fixed_clock(parse_moment(now)) if now else system_clock


def current_clock() -> Clock:
    """The clock every command judges periods and stamps actions at."""
    return _clock[0]


def clock_of(now: str | None) -> Clock:
    """The clock a `Now` option asks for: pinned when given, else this invocation's clock."""
    return fixed_clock(parse_moment(now)) if now else current_clock()


def open_workspace(home: Path | None) -> Workspace:
    return Workspace.open(home, clock=current_clock())


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


@contextmanager
def writing_audited(
    home: Path | None, actor: str, action: str, target: str
) -> Iterator[tuple[Workspace, Session]]:
    """As `writing`; bad input refused inside is audited as `action` once the work rolled back (REQ-40)."""
    workspace = open_workspace(home)
    with (
        refusals_audited(workspace.sessions, Asker(actor, None, CLI), action, target),
        workspace.sessions() as session,
        session.begin(),
    ):
        yield workspace, session


def on_the_command_line() -> AbstractContextManager[None]:
    """Every event of a command names the channel ``cli`` and its operator, the login behind the
    CLI: a command run ``--as`` another login is otherwise recorded under that login alone."""
    return acting_through(CLI, operator=ACTOR)
