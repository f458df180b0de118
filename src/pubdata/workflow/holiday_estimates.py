"""Estimated holidays and make-up working days of years the official calendar does not cover yet.

The State Council publishes each year's holiday arrangement late in the year before, and the
``chinesecalendar`` package ships it some time later; until then a deadline crossing New Year would
otherwise be counted Monday to Friday, with New Year's Day a working day. This module estimates the
arrangement from the festivals' dates and the pattern the notices have followed since the 2024
revision of 《全国年节及纪念日放假办法》 (in force from 2025):

* Statutory days: 1 January; 除夕 and 正月初一–初三; 清明; 1–2 May; 端午; 中秋; 1–3 October.
* Long breaks: 春节 from 除夕 to 初七; 劳动节 1–5 May; 国庆 1–7 October, or eight days together
  with 中秋 when it falls between 29 September and 8 October (as in 2020, 2023 and 2025).
* A one-day holiday on Tuesday takes Monday too, worked back on the Saturday before; on Thursday it
  takes Friday, worked back on the Sunday after; on a weekend it is made up on the next weekday.
* A long break's extra weekdays (its weekdays beyond its statutory days) are worked back on the
  nearest weekend days outside it, before and after in turn (2025: 26 January and 8 February).

Checked against the official 2025 and 2026 calendars by ``tests/test_provisional_deadlines.py``.
These are estimates, so every deadline that counts on them is marked provisional.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

import chinese_calendar

_DAY = timedelta(days=1)

#: 正月初一, 五月初五 and 八月十五 of each year, from the lunar calendar (Hong Kong Observatory's
#: Gregorian–lunar conversion tables, as also computed by the ``lunardate`` package).
LUNAR_FESTIVALS: dict[int, tuple[date, date, date]] = {
    2025: (date(2025, 1, 29), date(2025, 5, 31), date(2025, 10, 6)),
    2026: (date(2026, 2, 17), date(2026, 6, 19), date(2026, 9, 25)),
    2027: (date(2027, 2, 6), date(2027, 6, 9), date(2027, 9, 15)),
    2028: (date(2028, 1, 26), date(2028, 5, 28), date(2028, 10, 3)),
    2029: (date(2029, 2, 13), date(2029, 6, 16), date(2029, 9, 22)),
    2030: (date(2030, 2, 3), date(2030, 6, 5), date(2030, 9, 12)),
    2031: (date(2031, 1, 23), date(2031, 6, 24), date(2031, 10, 1)),
    2032: (date(2032, 2, 11), date(2032, 6, 12), date(2032, 9, 19)),
    2033: (date(2033, 1, 31), date(2033, 6, 1), date(2033, 9, 8)),
    2034: (date(2034, 2, 19), date(2034, 6, 20), date(2034, 9, 27)),
    2035: (date(2035, 2, 8), date(2035, 6, 10), date(2035, 9, 16)),
}


@dataclass(frozen=True)
class EstimatedYear:
    """The estimated days off on weekdays and worked weekend days of one year."""

    holidays: frozenset[date]
    workdays: frozenset[date]


def can_estimate(year: int) -> bool:
    """Whether the festivals of `year` are known well enough to estimate its arrangement."""
    return year in LUNAR_FESTIVALS


def _qingming(year: int) -> date:
    terms = chinese_calendar.get_solar_terms(date(year, 4, 1), date(year, 4, 10))
    found: date = next(day for day, name in terms if name == "清明")
    return found


def _weekend(day: date) -> bool:
    return day.weekday() >= 5


class _Arrangement:
    """The days off and worked weekend days of a year, built festival by festival."""

    def __init__(self) -> None:
        self.off: set[date] = set()
        self.worked: set[date] = set()

    def _next_weekend_day(self, day: date, step: timedelta) -> date:
        while not _weekend(day) or day in self.off or day in self.worked:
            day += step
        return day

    def long_break(self, first: date, last: date, statutory: int) -> None:
        days = [first + _DAY * i for i in range((last - first).days + 1)]
        self.off.update(days)
        extra = sum(1 for d in days if not _weekend(d)) - statutory
        for turn in range(max(extra, 0)):
            before = turn % 2 == 0
            start = first - _DAY if before else last + _DAY
            self.worked.add(self._next_weekend_day(start, -_DAY if before else _DAY))

    def one_day(self, day: date) -> None:
        weekday = day.weekday()
        self.off.add(day)
        if weekday == 1:  # Tuesday: Monday off, worked back on the Saturday before
            self.off.add(day - _DAY)
            self.worked.add(day - 3 * _DAY)
        elif weekday == 3:  # Thursday: Friday off, worked back on the Sunday after
            self.off.add(day + _DAY)
            self.worked.add(day + 3 * _DAY)
        elif weekday >= 5:  # on a weekend: the next weekday off instead
            lieu = day + _DAY
            while _weekend(lieu) or lieu in self.off:
                lieu += _DAY
            self.off.add(lieu)


@cache
def estimate_year(year: int) -> EstimatedYear:
    """The estimated arrangement of `year`; call only when `can_estimate(year)`."""
    spring, dragon_boat, mid_autumn = LUNAR_FESTIVALS[year]
    plan = _Arrangement()
    plan.long_break(spring - _DAY, spring + 6 * _DAY, statutory=4)
    plan.long_break(date(year, 5, 1), date(year, 5, 5), statutory=2)
    if date(year, 9, 29) <= mid_autumn <= date(year, 10, 8):
        first = min(mid_autumn, date(year, 10, 1))
        plan.long_break(first, first + 7 * _DAY, statutory=4)
    else:
        plan.long_break(date(year, 10, 1), date(year, 10, 7), statutory=3)
        plan.one_day(mid_autumn)
    for day in (date(year, 1, 1), _qingming(year), dragon_boat):
        plan.one_day(day)
    holidays = frozenset(d for d in plan.off if d.year == year and not _weekend(d))
    workdays = frozenset(d for d in plan.worked - plan.off if d.year == year)
    return EstimatedYear(holidays, workdays)


def is_estimated_working_day(day: date) -> bool:
    """Whether people are expected to work on `day`; call only when `can_estimate(day.year)`."""
    estimate = estimate_year(day.year)
    if day in estimate.workdays:
        return True
    return day not in estimate.holidays and not _weekend(day)
