"""How much each entry is used (REQ-23): queries, exports, rows served and consumers, per local day.

The gateway counts in the transaction that audits a call (`count_use`), so a counter exists
exactly when the audit event does. Only calls that served their whole answer (outcome ``ok``) count;
refused, failed and aborted calls are in the audit log but not in the figures. Counting is one
INSERT … ON CONFLICT DO UPDATE per call, which both SQLite and PostgreSQL run atomically, so two
calls at once never lose a count.

A query that reads several entries counts once for each of them, with the full number of rows it
served: the answer was built from every entry it read, and the rows cannot be split between them.

Days are local days in Asia/Shanghai, the calendar of the yearly evaluation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from pubdata.catalog.service import get_entry
from pubdata.db.models import CatalogEntry, Organisation, UsageDaily
from pubdata.errors import PubdataError
from pubdata.messages import text
from pubdata.workflow.working_days import LOCAL_TZ

#: Dialect → its INSERT with ON CONFLICT; the two databases the platform runs on say it the same way.
UPSERTS: dict[str, Callable[..., Any]] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
#: Consumer key of callers without an organisation (open-data users).
PUBLIC = "public"


def consumer_key(organisation: Organisation | None) -> str:
    return f"org:{organisation.id}" if organisation is not None else PUBLIC


def local_day(at: dt.datetime) -> dt.date:
    return at.astimezone(LOCAL_TZ).date()


def count_use(
    session: Session,
    entries: Iterable[str],
    organisation: Organisation | None,
    kind: str,
    rows: int,
    at: dt.datetime,
) -> int:
    """Count one call serving `rows` rows from each of `entries`, in the caller's transaction.

    `kind` is the call's audit action: ``export.<format>`` (or ``export``) counts as an export,
    anything else (``query``, ``rows``) as a query. Returns how many entries were counted (codes
    unknown to the catalogue are skipped).
    """
    exported = kind == "export" or kind.startswith("export.")
    codes = {code.lower() for code in entries}
    if not codes:
        return 0
    entry_ids = session.scalars(select(CatalogEntry.id).where(func.lower(CatalogEntry.code).in_(codes))).all()
    if not entry_ids:
        return 0
    dialect = session.get_bind().dialect.name
    try:
        insert = UPSERTS[dialect]
    except KeyError:
        raise PubdataError(f"usage counting does not support the {dialect} database") from None
    statement = insert(UsageDaily).values(
        [
            {
                "entry_id": entry_id,
                "day": local_day(at),
                "consumer": consumer_key(organisation),
                "organisation_id": organisation.id if organisation is not None else None,
                "queries": int(not exported),
                "exports": int(exported),
                "rows": rows,
            }
            for entry_id in sorted(entry_ids)
        ]
    )
    statement = statement.on_conflict_do_update(
        index_elements=["entry_id", "day", "consumer"],
        set_={
            name: getattr(UsageDaily, name) + getattr(statement.excluded, name)
            for name in ("queries", "exports", "rows")
        },
    )
    session.execute(statement)
    return len(entry_ids)


@dataclass(frozen=True)
class DayUsage:
    """Use of one entry on one local day (or, for the total, over the whole period)."""

    day: dt.date | None
    queries: int
    exports: int
    rows: int
    #: Distinct consumer organisations (callers without one are not counted here).
    organisations: int
    #: Calls by callers without an organisation (open-data users), queries and exports together.
    public_calls: int


def _period(since: dt.date | None, until: dt.date | None) -> list[Any]:
    if since is not None and until is not None and since > until:
        raise PubdataError(
            text(
                "since {since} is after until {until}: give the first day, then the last",
                since=since,
                until=until,
            )
        )
    conditions: list[Any] = []
    if since is not None:
        conditions.append(UsageDaily.day >= since)
    if until is not None:
        conditions.append(UsageDaily.day <= until)
    return conditions


def _figures(session: Session, code: str, since: dt.date | None, until: dt.date | None) -> Any:
    entry = get_entry(session, code)
    public = UsageDaily.consumer == PUBLIC
    return select(
        func.coalesce(func.sum(UsageDaily.queries), 0),
        func.coalesce(func.sum(UsageDaily.exports), 0),
        func.coalesce(func.sum(UsageDaily.rows), 0),
        func.count(func.distinct(UsageDaily.organisation_id)),
        func.coalesce(func.sum(case((public, UsageDaily.queries + UsageDaily.exports), else_=0)), 0),
    ).where(UsageDaily.entry_id == entry.id, *_period(since, until))


def usage(
    session: Session, entry_code: str, since: dt.date | None = None, until: dt.date | None = None
) -> list[DayUsage]:
    """Per local day from `since` to `until` (both included; open when None), days with use only."""
    query = _figures(session, entry_code, since, until)
    by_day = query.add_columns(UsageDaily.day).group_by(UsageDaily.day).order_by(UsageDaily.day)
    rows = session.execute(by_day)
    return [DayUsage(day, int(q), int(e), int(r), int(o), int(p)) for q, e, r, o, p, day in rows]


def usage_total(
    session: Session, entry_code: str, since: dt.date | None = None, until: dt.date | None = None
) -> DayUsage:
    """The whole period at once; `organisations` counts each organisation once, not once per day."""
    q, e, r, o, p = session.execute(_figures(session, entry_code, since, until)).one()
    return DayUsage(None, int(q), int(e), int(r), int(o), int(p))
