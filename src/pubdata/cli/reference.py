"""The CLI reference (docs/cli.md), generated from the commands' own ``--help``.

Generating it means the reference cannot drift from the code: `tests/test_docs.py` regenerates it
and fails when the committed file differs. Help is rendered as plain text at a fixed width so the
file does not depend on the terminal that produced it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer
from typer._click import Context
from typer.core import TyperGroup

from pubdata.cli.errors import EXIT_CODES

WIDTH = 100

HEADER = """\
# CLI reference

Generated from `pubdata … --help` by `scripts/gen_cli_docs.py`; `tests/test_docs.py` fails when
this file is out of date. Every command that prints data takes `--json` (UTF-8, Chinese kept
readable). The workspace is `--home`, else `$PUBDATA_HOME`, else `./pubdata-home`.

## Exit codes

{exit_codes}
"""


def _walk(command: Any, ctx: Context) -> Iterator[tuple[str, Any, Context]]:
    yield ctx.command_path, command, ctx
    if isinstance(command, TyperGroup):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from _walk(
                    sub,
                    Context(sub, info_name=name, parent=ctx, terminal_width=WIDTH, max_content_width=WIDTH),
                )


def _plain_help(command: Any, ctx: Context) -> str:
    command.rich_markup_mode = None  # a fresh command object: plain click formatting, fixed width
    return str(command.get_help(ctx)).rstrip()


def commands(app: typer.Typer) -> Iterator[tuple[str, Any, Context]]:
    """Every command reachable from `app`: its path, the command, a context to render its help in."""
    root = typer.main.get_command(app)
    yield from _walk(root, Context(root, info_name="pubdata", terminal_width=WIDTH, max_content_width=WIDTH))


def cli_reference(app: typer.Typer) -> str:
    """The Markdown reference of every command reachable from `app`."""
    parts = [HEADER.format(exit_codes=EXIT_CODES)]
    for path, command, sub_ctx in commands(app):
        parts.append(f"## `{path}`\n\n```text\n{_plain_help(command, sub_ctx)}\n```\n")
    return "\n".join(parts)


def command_paths(app: typer.Typer) -> list[str]:
    return [path for path, _command, _ctx in commands(app)]
