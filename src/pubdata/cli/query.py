"""``pubdata query``: the gateway's query path, run locally as a named user.

No token is needed on the machine that holds the workspace, but nothing else is skipped: the same
access decision, policy rewrite, sandboxed engine, export writer and audit event as
``POST /api/v1/query``, recorded as that user with ``channel: cli``. The answer goes to ``--out``
or to standard output; a line on standard error says how many rows left and the result's hash.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pubdata.cli.options import Home, open_workspace
from pubdata.cli.render import err, success
from pubdata.gateway.engine import SandboxedEngine
from pubdata.gateway.export import FORMATS
from pubdata.gateway.identity import local_principal
from pubdata.gateway.query import run_query


def query(
    sql: Annotated[str, typer.Argument(help="One SELECT over catalogue entry codes (DuckDB SQL).")],
    login: Annotated[str, typer.Option("--as", help="Login of the user the query runs as.")],
    purpose: Annotated[str, typer.Option("--purpose", help="What the data is used for (REQ-17).")],
    application: Annotated[str, typer.Option("--application", help="Code of the consuming application.")],
    output_format: Annotated[
        str, typer.Option("--format", help=f"Answer format: {', '.join(FORMATS)}.")
    ] = "json",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the answer here [default: stdout].")
    ] = None,
    max_rows: Annotated[
        int | None, typer.Option("--max-rows", min=1, help="Row cap [default: the format's page, or all].")
    ] = None,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Rows of the answer to skip.")] = 0,
    bom: Annotated[
        bool | None,
        typer.Option("--bom/--no-bom", help="Start CSV with a UTF-8 BOM [default: yes, unless --csv-raw]."),
    ] = None,
    csv_raw: Annotated[
        bool,
        typer.Option(
            "--csv-raw",
            help="CSV as stored, for programs: no ' before cells that start like a formula, LF line ends.",
        ),
    ] = False,
    home: Home = None,
) -> None:
    """Run SQL through the sharing gateway as a user: decided, rewritten, audited as over HTTP."""
    workspace = open_workspace(home)
    with workspace.sessions() as session:
        principal = local_principal(session, login)
    with SandboxedEngine.for_workspace(workspace) as engine:
        answer = run_query(
            workspace,
            principal,
            sql,
            purpose,
            application,
            output_format,
            engine=engine,
            max_rows=max_rows,
            offset=offset,
            bom=bom,
            csv_raw=csv_raw,
            channel="cli",
        )
        if out is None:
            for chunk in answer.body:
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
        else:
            with out.open("wb") as file:
                for chunk in answer.body:
                    file.write(chunk)
    served = answer.served
    summary = f"{served.rows} rows{' (truncated)' if served.truncated else ''}, sha256 {served.result_hash}"
    if served.outcome != "ok":
        err().print(f"[red]✗[/red] {escape(f'the query failed after {summary}: {served.error}')}")
        raise typer.Exit(1)
    if out is not None:
        success(f"wrote {out}: {summary}")
    else:
        typer.echo(summary, err=True)


def register(app: typer.Typer) -> None:
    app.command("query")(query)
