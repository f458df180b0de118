"""``pubdata calendar check``: whether deadlines of the coming year rest on the official calendar.

Deadlines are counted in working days from the State Council's yearly arrangement, shipped by the
``chinesecalendar`` package some time after the notice. A platform that is not updated keeps
running past New Year on estimates (``deadlines.unknown_year``), every such deadline marked
provisional — or stops, when the setting says ``refuse``. This check says which, early enough for an
operator to update the package or list the notice's days in the settings (REQ-13).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import typer

from pubdata.cli.errors import warn
from pubdata.cli.options import Home, Json, current_clock, open_workspace
from pubdata.cli.render import fields_block, print_json, success
from pubdata.messages import text
from pubdata.settings import Deadlines
from pubdata.workflow.holiday_estimates import can_estimate
from pubdata.workflow.working_days import LOCAL_TZ, WorkCalendar, official_year

app = typer.Typer(help="The working-day calendar of deadlines (REQ-13).", no_args_is_help=True)


@dataclass(frozen=True)
class YearCover:
    """How a year's deadlines are counted."""

    year: int
    official: bool
    listed: bool
    counted_as: str  # official, listed, estimate, weekdays or refuse

    @property
    def provisional(self) -> bool:
        return self.counted_as in ("estimate", "weekdays")


def year_cover(year: int, deadlines: Deadlines) -> YearCover:
    """How deadlines falling in `year` are counted under the workspace's `deadlines` settings."""
    official = official_year(year)
    listed = not official and not WorkCalendar.from_deadlines(deadlines).provisional(dt.date(year, 6, 1))
    if official or listed:
        return YearCover(year, official, listed, "official" if official else "listed")
    mode = deadlines.unknown_year
    if mode == "estimate" and not can_estimate(year):
        mode = "weekdays"
    return YearCover(year, official, listed, mode)


@app.command("check")
def check(home: Home = None, as_json: Json = False) -> None:
    """Warn when this year or the next lacks the official holiday data (exit 1)."""
    workspace = open_workspace(home)
    deadlines = workspace.settings.default.deadlines
    this_year = current_clock()().astimezone(LOCAL_TZ).year
    covers = [year_cover(year, deadlines) for year in (this_year, this_year + 1)]
    for cover in covers:
        if cover.counted_as == "refuse":
            warn(
                "calendar_year_refused",
                text(
                    "{year} has no official working-day calendar: deadlines that reach it are refused "
                    "(deadlines.unknown_year = refuse); update the chinesecalendar package or list "
                    "the notice's days in deadlines.holidays and deadlines.workdays",
                    year=cover.year,
                ),
                as_json,
            )
        elif cover.provisional:
            warn(
                "calendar_year_provisional",
                text(
                    "{year} has no official working-day calendar: deadlines that reach it are counted "
                    "on estimated holidays and marked provisional; update the chinesecalendar package "
                    "or list the notice's days in deadlines.holidays and deadlines.workdays",
                    year=cover.year,
                ),
                as_json,
            )
    if as_json:
        print_json([{**asdict(c), "provisional": c.provisional} for c in covers])
    else:
        fields_block("", [(str(c.year), c.counted_as) for c in covers])
        if not any(c.counted_as not in ("official", "listed") for c in covers):
            success(f"{this_year} and {this_year + 1} follow the official calendar")
    if any(c.counted_as not in ("official", "listed") for c in covers):
        raise typer.Exit(1)
