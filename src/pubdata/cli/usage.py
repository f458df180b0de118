"""``pubdata usage``: how much an entry was used, per local day, for the yearly evaluation (REQ-23)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import sys
from typing import Annotated

import typer

from pubdata.cli.options import Home, Json, reading
from pubdata.cli.render import print_json, table
from pubdata.workflow.usage import DayUsage, usage, usage_total

COLUMNS = ("day", "queries", "exports", "rows", "organisations", "public_calls")


def _csv(days: list[DayUsage], total: DayUsage) -> bytes:
    """UTF-8 with a BOM, so that Excel opens it with the Chinese intact; the total is the last row."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for figures in [*days, total]:
        writer.writerow(["total" if figures.day is None else figures.day.isoformat(),
                         *(getattr(figures, c) for c in COLUMNS[1:])])  # fmt: skip
    return b"\xef\xbb\xbf" + text.getvalue().encode("utf-8")


def usage_command(
    code: Annotated[str, typer.Argument(help="Catalogue entry code.")],
    since: Annotated[
        dt.datetime | None, typer.Option("--since", formats=["%Y-%m-%d"], help="First local day, included.")
    ] = None,
    until: Annotated[
        dt.datetime | None, typer.Option("--until", formats=["%Y-%m-%d"], help="Last local day, included.")
    ] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV (UTF-8 with BOM, for Excel).")] = False,
    home: Home = None,
    as_json: Json = False,
) -> None:
    """Queries, exports, rows served and consumer organisations of an entry, per day and in total."""
    first, last = (since.date() if since else None), (until.date() if until else None)
    with reading(home) as (_workspace, session):
        days, total = usage(session, code, first, last), usage_total(session, code, first, last)
    if as_json:
        print_json({"entry": code, "since": first, "until": last, "days": days, "total": total})
    elif as_csv:
        sys.stdout.buffer.write(_csv(days, total))
        sys.stdout.buffer.flush()
    else:
        rows: list[list[object]] = [
            [d.day or "total", d.queries, d.exports, d.rows, d.organisations, d.public_calls]
            for d in [*days, total]
        ]
        table(f"Usage of {code}", ["day", "queries", "exports", "rows", "organisations", "public"], rows)


def register(app: typer.Typer) -> None:
    app.command("usage")(usage_command)
