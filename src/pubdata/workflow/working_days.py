"""Deadlines counted in Chinese working days, 调休 included (REQ-13, REQ-16).

The regulation sets every time limit of the sharing workflow in working days, and China moves them
around each year: a weekday holiday is not a working day, and an officially announced make-up
Saturday or Sunday (调休) is. Only the State Council's yearly notice knows which is which, so the
calendar comes from ``chinesecalendar``. For a year the package does not know yet (its data ends
with the last notice it shipped), the workspace may list the notice's days in its settings
(``deadlines.holidays`` / ``deadlines.workdays``); otherwise ``deadlines.unknown_year`` decides:
``estimate`` (the default) counts that year's holidays as `holiday_estimates` expects the notice to
set them — New Year's Day is a holiday even before the notice is out — ``weekdays`` counts Monday to
Friday, and ``refuse`` makes such a deadline an error, for a platform that would rather stop than
guess. Estimated or counted Monday to Friday, such a deadline is *provisional*
(`deadline_is_provisional`), and every answer and page that shows it says so.

Conventions (the usual rule of administrative time limits: the day of filing is not counted):

* Days are the local calendar days of `tz` (Asia/Shanghai unless a caller says otherwise).
* Day 1 is the first working day *after* the local date of the start. A request filed on a
  working day counts from the next working day; one filed on a weekend or holiday counts from the
  next working day as well, so filing on Friday evening or on Saturday gives the same deadline.
* The deadline is the end of the n-th working day, 23:59:59 local time, returned timezone-aware in
  `tz` (compare it with any aware datetime; convert with ``astimezone`` for display elsewhere).
* ``n == 0`` means "the same day": the end of the local day of the start.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

import chinese_calendar

from pubdata.errors import PubdataError
from pubdata.messages import text
from pubdata.settings import Deadlines
from pubdata.workflow.holiday_estimates import can_estimate, is_estimated_working_day

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
_END_OF_DAY = time(23, 59, 59)
_ONE_DAY = timedelta(days=1)

#: Workflow step → the field of `Deadlines` that sets its limit. Steps are data, so a new step is
#: a new line here and in the settings, not a new branch.
STEP_DEADLINES: Mapping[str, str] = {
    "check": "check_wd",
    "decide": "decide_wd",
    "coordinate": "coordinate_wd",
    "objection_accept": "objection_accept_wd",
    "objection_verify": "objection_verify_wd",
}


class CalendarYearUnknown(PubdataError):
    """The working-day calendar has no official data for `year`; update ``chinesecalendar``."""

    def __init__(self, year: int) -> None:
        super().__init__(
            text(
                "no official working-day calendar for {year}: the holidays and make-up working days "
                "of {year} are not known yet; update the chinesecalendar package once the State "
                "Council has published them",
                year=year,
            )
        )
        self.year = year


@dataclass(frozen=True)
class WorkCalendar:
    """Which days are working days: the package's official data, the workspace's additions for years
    it lacks, and what to do about a year neither knows."""

    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)
    unknown_year: Literal["estimate", "weekdays", "refuse"] = "estimate"

    @classmethod
    def from_deadlines(cls, deadlines: Deadlines) -> WorkCalendar:
        return cls(
            frozenset(date.fromisoformat(d) for d in deadlines.holidays),
            frozenset(date.fromisoformat(d) for d in deadlines.workdays),
            deadlines.unknown_year,
        )

    def _listed_year(self, year: int) -> bool:
        return any(d.year == year for d in self.holidays | self.workdays)

    def is_working_day(self, day: date) -> bool:
        """Whether people work on `day` in China: make-up weekend days yes, weekday holidays no."""
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError as exc:
            if self._listed_year(day.year):
                return day.weekday() < 5
            if self.unknown_year == "refuse":
                raise CalendarYearUnknown(day.year) from exc
            if self.unknown_year == "estimate" and can_estimate(day.year):
                return is_estimated_working_day(day)
            return day.weekday() < 5  # past the festival table too: the calendar check warns

    def provisional(self, day: date) -> bool:
        """Whether `day` lies in a year counted on estimates for want of the official notice."""
        return not official_year(day.year) and not self._listed_year(day.year)


def official_year(year: int) -> bool:
    """Whether ``chinesecalendar`` ships the State Council's arrangement for `year`."""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


#: The calendar of the default settings (weekdays for a year without official data).
DEFAULT_CALENDAR = WorkCalendar()


def is_working_day(day: date, calendar: WorkCalendar = DEFAULT_CALENDAR) -> bool:
    """Whether people work on `day` in China under `calendar`."""
    return calendar.is_working_day(day)


def _local_date(moment: datetime, tz: tzinfo) -> date:
    # A naive datetime has no place on the time line; guessing its zone would shift deadlines.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone; deadlines need aware datetimes")
    return moment.astimezone(tz).date()


def _working_days_after(day: date, calendar: WorkCalendar) -> Iterator[date]:
    """Working days strictly after `day`, in order."""
    while True:
        day += _ONE_DAY
        if calendar.is_working_day(day):
            yield day


def add_working_days(
    start: datetime, n: int, tz: tzinfo = LOCAL_TZ, calendar: WorkCalendar = DEFAULT_CALENDAR
) -> datetime:
    """The deadline `n` working days after `start`: the end of that working day in `tz`."""
    if n < 0:
        raise PubdataError(f"a deadline needs a non-negative number of working days, got {n}")
    day = _local_date(start, tz)
    days = _working_days_after(day, calendar)
    for _ in range(n):
        day = next(days)
    return datetime.combine(day, _END_OF_DAY, tzinfo=tz)


def working_days_between(
    a: datetime, b: datetime, tz: tzinfo = LOCAL_TZ, calendar: WorkCalendar = DEFAULT_CALENDAR
) -> int:
    """Working days in (a, b] by local date; negative when `b` is before `a`.

    ``working_days_between(now, deadline)`` is what remains (0 on the last day), and a negative
    value is how many working days a step is overdue.
    """
    first, last = _local_date(a, tz), _local_date(b, tz)
    sign = 1
    if last < first:
        first, last, sign = last, first, -1
    count = sum(
        1
        for offset in range(1, (last - first).days + 1)
        if calendar.is_working_day(first + timedelta(days=offset))
    )
    return sign * count


def is_overdue(deadline: datetime, now: datetime) -> bool:
    """Whether `now` is past the deadline; the whole last second 23:59:59 still counts as in time."""
    if deadline.tzinfo is None or now.tzinfo is None:
        raise ValueError("is_overdue needs timezone-aware datetimes")
    return now >= deadline.replace(microsecond=0) + timedelta(seconds=1)


def deadline_is_provisional(
    deadline: datetime, tz: tzinfo = LOCAL_TZ, calendar: WorkCalendar = DEFAULT_CALENDAR
) -> bool:
    """Whether `deadline` was counted on estimated days: its local day lies past the official data.

    Days are counted forwards and the data covers every year up to its last, so the deadline's own
    day decides for every day counted before it.
    """
    return calendar.provisional(_local_date(deadline, tz))


def end_of_local_day(day: date, tz: tzinfo = LOCAL_TZ) -> datetime:
    """The last second of `day` in `tz`: what "until 2027-03-01" means, in the CLI and the portal."""
    return datetime.combine(day, _END_OF_DAY, tzinfo=tz)


def start_of_local_day(day: date, tz: tzinfo = LOCAL_TZ) -> datetime:
    """Midnight at the start of `day` in `tz`: what "from 2027-03-01" means."""
    return datetime.combine(day, time(), tzinfo=tz)


def deadline_for(step: str, start: datetime, deadlines: Deadlines, tz: tzinfo = LOCAL_TZ) -> datetime:
    """The deadline of a workflow `step` begun at `start`, under a tenant's `deadlines` settings."""
    try:
        field_name = STEP_DEADLINES[step]
    except KeyError:
        known = ", ".join(STEP_DEADLINES)
        raise PubdataError(f"unknown workflow step {step!r}; known steps: {known}") from None
    n: int = getattr(deadlines, field_name)
    return add_working_days(start, n, tz, WorkCalendar.from_deadlines(deadlines))
