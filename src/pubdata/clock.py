"""The clock the platform reads "now" from, passed in rather than read from the wall.

Deadlines, escalations, grant periods and the demo's "filed two weeks ago" all hang on one instant.
A demo built at one instant and an app that judges it at another disagree (a request "overdue" on
the day of the build is not overdue a month earlier), so whoever starts the platform chooses the
clock once and hands the same one to the demo builder and to the app (``app.state.clock``). The
commands use `system_clock`; tests and replays use `fixed_clock`.

Example:
    >>> noon = fixed_clock(parse_moment("2027-06-30T12:00:00+08:00"))
    >>> noon().isoformat()
    '2027-06-30T04:00:00+00:00'
    >>> parse_moment("2028-02-29").isoformat()
    '2028-02-29T00:00:00+00:00'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pubdata.errors import InputError

#: A clock: called with nothing, answers an aware datetime in UTC.
Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    """The wall clock, in UTC: what the commands and the server read."""
    return dt.datetime.now(dt.UTC)


def fixed_clock(moment: dt.datetime) -> Clock:
    """A clock that always answers `moment` (aware; kept in UTC) — for tests and replays."""
    if moment.tzinfo is None:
        raise InputError(f"a fixed clock needs a time zone: {moment.isoformat()}")
    pinned = moment.astimezone(dt.UTC)

    def clock() -> dt.datetime:
        return pinned

    return clock


def parse_moment(text: str) -> dt.datetime:
    """An ISO date or date-time as an aware UTC instant; without a zone it is read as UTC."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"not an ISO date or date-time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def now_on(state: object) -> dt.datetime:
    """Now by the clock an app's state carries (``app.state.clock``), else by the system clock —
    what every page and route reads, so that a pinned app judges deadlines at one instant."""
    clock: Clock | None = getattr(state, "clock", None)
    return clock() if clock is not None else system_clock()
