"""Turning failures into one readable line and an exit code, never a traceback by default.

The exit codes are `EXIT_CODES`; docs/cli.md quotes them from here.
"""

from __future__ import annotations

import os
from typing import Any

import typer
from rich.markup import escape
from typer._click import Context  # the Context type TyperGroup.invoke declares
from typer.core import TyperGroup

from pubdata.cli.render import err
from pubdata.errors import InputError, NotFound, PubdataError

DEBUG_ENV = "PUBDATA_DEBUG"
EXIT_CODES = (
    "0 success; 1 refused by a rule or another platform error; 2 bad input (a file, an unknown entry or "
    "organisation, a bad option); 3 an unexpected failure (a bug: rerun with `PUBDATA_DEBUG=1` for the "
    "traceback)."
)
#: Exceptions that already are the CLI's own way out (usage errors, ``typer.Exit``).
_PASS_THROUGH = (typer.TyperException, typer.Exit, typer.Abort)


def exit_code_for(exc: PubdataError) -> int:
    return 2 if isinstance(exc, InputError | NotFound) else 1


class ReportingGroup(TyperGroup):
    """The root group: every subcommand runs inside its `invoke`, so one handler covers them all."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except _PASS_THROUGH:
            raise
        except PubdataError as exc:
            err().print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(exit_code_for(exc)) from None
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            err().print(f"[red]unexpected error:[/red] {escape(type(exc).__name__)}: {escape(str(exc))}")
            err().print(f"Rerun with {DEBUG_ENV}=1 to see the traceback.")
            raise typer.Exit(3) from None
