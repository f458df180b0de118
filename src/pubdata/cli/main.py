"""The ``pubdata`` command: workspace set-up, serving the API, and the command groups.

Every command runs under `ReportingGroup`, which prints platform errors as one red line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from pubdata import __version__
from pubdata.cli import audit, catalog, collection, data, demo, grants, identity, orgs, query
from pubdata.cli import conformance as conformance_cli
from pubdata.cli import inbox as inbox_cli
from pubdata.cli import incidents as incidents_cli
from pubdata.cli import objections as objections_cli
from pubdata.cli import requests as requests_cli
from pubdata.cli import usage as usage_cli
from pubdata.cli import workdays as workdays_cli
from pubdata.cli.errors import ReportingGroup, warn
from pubdata.cli.options import Home, Json, Now, clock_of, on_the_command_line, open_workspace, pin_clock
from pubdata.cli.render import fields_block, print_json, success
from pubdata.cli.server import run_server
from pubdata.db.urls import DB_URL_ENV, masked, password, read_url_file
from pubdata.errors import InputError
from pubdata.messages import text
from pubdata.workspace import Workspace

app = typer.Typer(
    cls=ReportingGroup,
    name="pubdata",
    help="Public-data catalogue, versioned store and ingestion (Zhejiang Public Data Regulation).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help, as docs/cli.md shows it: Rich markup would eat every `[default: …]` in help texts.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pubdata {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    now: Now = None,
) -> None:
    """Public-data catalogue, versioned store and ingestion (Zhejiang Public Data Regulation)."""
    pin_clock(now)
    ctx.with_resource(on_the_command_line())


@app.command()
def init(
    home: Home = None,
    db_url: Annotated[
        str | None,
        typer.Option(
            "--db-url",
            help="SQLAlchemy URL of the metadata database, without a password: the process list shows "
            "it to every local user [default: $PUBDATA_DB_URL, else the URL the workspace has, else "
            "HOME/metadata.db].",
        ),
    ] = None,
    db_url_file: Annotated[
        Path | None,
        typer.Option(
            "--db-url-file",
            help="Read the URL from this file instead; it must be mode 0600 if the URL holds a password.",
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Create a workspace (or bring an existing one up to date); safe to run again.

    A URL with a password is kept in HOME/workspace.json, which is then written readable by its
    owner only (0600); the password is never printed (shown as ***).
    """
    url = chosen_db_url(db_url, db_url_file, as_json)
    workspace = Workspace.init(home, url)
    facts = {
        "home": str(workspace.home),
        "db_url": masked(workspace.db_url),
        "settings": str(workspace.settings_path),
    }
    if as_json:
        print_json(facts)
        return
    success(f"workspace ready at {workspace.home}")
    fields_block("", [("metadata", facts["db_url"]), ("settings", facts["settings"])])


def chosen_db_url(db_url: str | None, db_url_file: Path | None, as_json: bool) -> str | None:
    """`--db-url-file`, else `--db-url` (warned about when it holds a password), else the environment."""
    if db_url is not None and db_url_file is not None:
        raise InputError(text("give --db-url or --db-url-file, not both"))
    if db_url_file is not None:
        return read_url_file(db_url_file)
    if db_url is not None:
        if password(db_url):
            warn(
                "password_on_command_line",
                text(
                    "the password in --db-url is visible to other local users in the process list; "
                    "use --db-url-file or ${variable} instead",
                    variable=DB_URL_ENV,
                ),
                as_json,
            )
        return db_url
    return os.environ.get(DB_URL_ENV) or None


demo.register(app)
data.register(app)
collection.register(catalog.app)
app.add_typer(catalog.app, name="catalog")
app.add_typer(orgs.app, name="orgs")
app.add_typer(identity.users_app, name="users")
app.add_typer(identity.tokens_app, name="tokens")
app.add_typer(identity.apps_app, name="apps")
grants.register(app)
query.register(app)
app.add_typer(audit.app, name="audit")
conformance_cli.register(app)
app.add_typer(inbox_cli.app, name="inbox")
requests_cli.register(app)
app.add_typer(objections_cli.app, name="objections")
app.add_typer(incidents_cli.app, name="incidents")
app.add_typer(workdays_cli.app, name="calendar")
usage_cli.register(app)


@app.command()
def serve(
    home: Home = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            envvar="PUBDATA_FORWARDED_ALLOW_IPS",
            help="Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed "
            "(comma-separated addresses or networks); none by default.",
        ),
    ] = "",
    now: Now = None,
) -> None:
    """Serve the read-only catalogue API (OpenAPI at /openapi.json)."""
    workspace = open_workspace(home)
    workspace.clock = clock_of(now)
    run_server(workspace, host, port, forwarded_allow_ips)
