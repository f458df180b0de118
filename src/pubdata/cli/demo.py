"""``pubdata demo``: build the demo province through the public code paths, then serve it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pubdata.cli.options import Home, Json, Now, clock_of
from pubdata.cli.render import err, fields_block, jsonable, print_json, records, success, table
from pubdata.cli.server import run_server
from pubdata.clock import Clock
from pubdata.workspace import Workspace, resolve_home


def print_summary(path: Path, summary: dict[str, Any], accounts: Path) -> None:
    """Counts first; then what each load did, and which drafts the rules hold back and why."""
    success(f"demo built in {path}")
    scalars = [(k, v) for k, v in summary.items() if not isinstance(v, dict | list)]
    fields_block("Summary", [*scalars, ("accounts", str(accounts))])
    for key, value in summary.items():
        if isinstance(value, dict) and value:
            table(key, ["entry", "why"], value.items())
        elif isinstance(value, list) and value:
            records(key, value)


def demo(
    home: Home = None,
    scale: Annotated[float, typer.Option(min=0.001, help="Multiplies the person-level tables.")] = 1.0,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Build only; do not start the API.")] = False,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    as_json: Json = False,
    now: Now = None,
) -> None:
    """Build a demo province (organisations, entries, messy files, versions) and serve it.

    Run again on a home that already holds the demo, it serves what is there instead of failing, so
    the quick-start command can be repeated.
    """
    from pubdata.demo.build import ACCOUNTS_FILE

    path = resolve_home(home)
    clock = clock_of(now)
    accounts = path / ACCOUNTS_FILE
    url = None if no_serve else f"http://{host}:{port}/"
    if accounts.exists():
        if as_json:
            print_json({"home": path, "summary": None, "accounts": accounts, "url": url})
        else:
            success(f"the demo is already built in {path} (accounts: {accounts}); remove it to build afresh")
    else:
        summary = _build(path, scale, quiet=as_json, clock=clock)
        if as_json:
            print_json({"home": path, "summary": summary, "accounts": accounts, "url": url})
        else:
            print_summary(path, jsonable(summary), accounts)
    if url is not None:
        if not as_json:
            _announce_portal(url, accounts)
        run_server(Workspace.open(path, clock=clock), host, port)


def _announce_portal(url: str, accounts: Path) -> None:
    """The portal's address and the demo's sign-ins, so a first visitor can log in at once."""
    import json

    users = json.loads(accounts.read_text("utf-8"))["users"]
    rows = [(u["login"], u["password"], "、".join(u["role_labels"]), u["organisation"] or "") for u in users]
    table(f"Portal: {url}", ["login", "password", "roles", "organisation"], rows)


def _build(path: Path, scale: float, quiet: bool, clock: Clock) -> Any:
    from pubdata.demo.build import build_demo

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=err(), disable=quiet) as progress:
        task = progress.add_task("preparing", total=None)

        def report(description: str, done: int, total: int) -> None:
            progress.update(task, description=description, completed=done, total=total)

        return build_demo(path, scale, report, clock=clock)


def register(app: typer.Typer) -> None:
    app.command()(demo)
