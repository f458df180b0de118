"""Column types that mean the same thing on SQLite and PostgreSQL.

SQLite has no time zones: SQLAlchemy's ``DateTime(timezone=True)`` stores an aware value's wall
time as given and drops the offset, so ``2027-03-01T00:00+08:00`` came back as ``00:00`` and was read
as UTC — eight hours late. Comparisons then ran on wall times, not instants: a "narrower" end of
``07:59+08:00`` passed the never-wider check of a decision although it is later than the end asked
for. PostgreSQL's ``timestamptz`` keeps instants but hands them back in the session's zone.

`UtcDateTime` makes both backends hold and return the same thing: every value is converted to UTC
before it is bound (so SQLite's text sorts and compares as the instants do), and every value comes
back aware, in UTC. A naive value is taken to be UTC — the rule the codebase has always followed
(`pubdata.db.models.aware`) and what ``datetime.now(UTC)`` minus its zone would be; code that means
a local wall time must attach the zone itself (``LOCAL_TZ``) before it gets here.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def as_utc(moment: dt.datetime) -> dt.datetime:
    """`moment` as the same instant in UTC; a naive value is taken to be UTC already.

    >>> as_utc(dt.datetime.fromisoformat("2027-03-01T00:00+08:00")).isoformat()
    '2027-02-28T16:00:00+00:00'
    >>> as_utc(dt.datetime(2027, 3, 1)).isoformat()
    '2027-03-01T00:00:00+00:00'
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A point in time, stored as UTC on every backend and read back aware in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):  # a date would pass the driver as midnight, unzoned
            raise TypeError(f"a point in time needs a datetime, got {type(value).__name__}")
        return as_utc(value)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else as_utc(value)
