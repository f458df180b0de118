"""The ``pubdata`` command: workspace set-up, serving the API, and the command groups.

Every command runs under `ReportingGroup`, which prints platform errors as one red line.
"""

from __future__ import annotations

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
from pubdata.cli.errors import ReportingGroup
from pubdata.cli.options import Home, Json, open_workspace
from pubdata.cli.render import fields_block, print_json, success
from pubdata.cli.server import run_server
from pubdata.workspace import Workspace

app = typer.Typer(
    cls=ReportingGroup,
    name="pubdata",
    help="Public-data catalogue, versioned store and ingestion (Zhejiang Public Data Regulation).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pubdata {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Public-data catalogue, versioned store and ingestion (Zhejiang Public Data Regulation)."""


@app.command()
def init(
    home: Home = None,
    db_url: Annotated[
        str | None,
        typer.Option("--db-url", help="SQLAlchemy URL of the metadata database [default: HOME/metadata.db]."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Create a workspace (or bring an existing one up to date); safe to run again."""
    workspace = Workspace.init(home, db_url)
    facts = {
        "home": str(workspace.home),
        "db_url": workspace.db_url,
        "settings": str(workspace.settings_path),
    }
    if as_json:
        print_json(facts)
        return
    success(f"workspace ready at {workspace.home}")
    fields_block("", [("metadata", workspace.db_url), ("settings", facts["settings"])])


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
usage_cli.register(app)


@app.command()
def serve(
    home: Home = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
) -> None:
    """Serve the read-only catalogue API (OpenAPI at /openapi.json)."""
    run_server(open_workspace(home), host, port)
