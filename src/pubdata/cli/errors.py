"""Turning failures into one readable line and an exit code, never a traceback by default.

The line is in the person's language (`pubdata.cli.language`: ``LANG=zh_CN.UTF-8`` → Chinese) and,
when the command was given ``--json``, it is a JSON object on stderr instead, so that a script reads
its errors the way it reads its answers. No message shows a database password: every one passes
through `pubdata.db.urls.scrub`. The exit codes are `EXIT_CODES`; docs/cli.md quotes them from here.
"""

from __future__ import annotations

import json
import os
from typing import Any

import typer
from rich.markup import escape
from typer._click import Context  # the Context type TyperGroup.invoke declares
from typer._click.exceptions import NoArgsIsHelpError
from typer.core import TyperGroup

from pubdata.cli import language
from pubdata.cli.render import err
from pubdata.db.urls import DatabaseUnreachable, scrub
from pubdata.errors import InputError, NotFound, PubdataError, RuleViolation
from pubdata.gateway.access import AccessDenied
from pubdata.gateway.engine import QueryError, QueryTimeout
from pubdata.gateway.identity import NotAuthenticated
from pubdata.gateway.policy_types import PolicyViolation
from pubdata.gateway.roles import NotAuthorised
from pubdata.messages import Text

DEBUG_ENV = "PUBDATA_DEBUG"
EXIT_CODES = (
    "0 success; 1 refused by a rule or another platform error (also: the metadata database cannot be "
    "reached); 2 bad input (a file, an unknown entry or organisation, a bad option); 3 an unexpected "
    "failure (a bug: rerun with `PUBDATA_DEBUG=1` for the traceback). Errors are one line on stderr, "
    'in Chinese when the locale asks for it (`LANG=zh_CN.UTF-8`); with `--json` they are `{"error": '
    '{"code": …, "message": …}}` on stderr.'
)
#: The ``code`` of a JSON error, by class (first match): the codes the HTTP API answers with.
ERROR_CODES: tuple[tuple[type[Exception], str], ...] = (
    (NotAuthenticated, "not_authenticated"),
    (NotAuthorised, "forbidden"),
    (AccessDenied, "denied"),
    (PolicyViolation, "policy"),
    (QueryTimeout, "timeout"),
    (QueryError, "query_failed"),
    (DatabaseUnreachable, "database_unreachable"),
    (NotFound, "not_found"),
    (InputError, "invalid"),
    (RuleViolation, "refused"),
    (PubdataError, "invalid"),
)
#: `ctx.meta` key: the command line asked for JSON.
_JSON = "pubdata.json"
#: Exceptions that already are the CLI's own way out (usage errors, ``typer.Exit``).
_PASS_THROUGH = (typer.TyperException, typer.Exit, typer.Abort)


def exit_code_for(exc: PubdataError) -> int:
    return 2 if isinstance(exc, InputError | NotFound) else 1


def error_code(exc: Exception) -> str:
    return next(code for cls, code in ERROR_CODES if isinstance(exc, cls))


def report(code: str, message: str, as_json: bool, prefix: str = "error:") -> None:
    """One error on stderr: a red line in the person's language, or a JSON object."""
    message = scrub(message)
    if as_json:
        body = {"error": {"code": code, "message": message}}
        typer.echo(json.dumps(body, ensure_ascii=False), err=True)
        return
    said = language.gettext(language.cli_locale())(prefix)
    err().print(f"[red]{escape(said)}[/red] {escape(message)}")


def warn(code: str, said: Text, as_json: bool = False) -> None:
    """A warning on stderr, in the person's language (with ``--json``: a JSON object); the command goes on."""
    if as_json:
        typer.echo(
            json.dumps({"warning": {"code": code, "message": scrub(said)}}, ensure_ascii=False), err=True
        )
        return
    gettext = language.gettext(language.cli_locale())
    err().print(f"[yellow]{escape(gettext('warning:'))}[/yellow] {escape(scrub(said.say(gettext)))}")


class ReportingGroup(TyperGroup):
    """The root group: every subcommand runs inside its `invoke`, so one handler covers them all."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        # The subcommand's own context does not exist yet when its options fail to parse.
        ctx.meta[_JSON] = "--json" in args[: args.index("--")] if "--" in args else "--json" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Context) -> Any:
        as_json = bool(ctx.meta.get(_JSON))
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except typer.TyperException as exc:
            if not as_json:
                raise
            report("usage", exc.format_message(), as_json=True)
            raise typer.Exit(getattr(exc, "exit_code", 2)) from None
        except _PASS_THROUGH:
            raise
        except PubdataError as exc:
            report(error_code(exc), language.say(exc, language.cli_locale()), as_json)
            raise typer.Exit(exit_code_for(exc)) from None
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            report("unexpected", f"{type(exc).__name__}: {exc}", as_json, prefix="unexpected error:")
            if not as_json:
                rerun = language.gettext(language.cli_locale())(
                    "Rerun with {variable}=1 to see the traceback."
                )
                err().print(escape(rerun.format(variable=DEBUG_ENV)))
            raise typer.Exit(3) from None
