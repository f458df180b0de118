"""Figures for the portal's charts and lists: sharing calls per day over every entry, the most used
entries, quality issues by entry, and whether an entry has records under objection.

Read-only sums over the same rows `pubdata.workflow.usage` and the ingest write; per-entry use stays
`usage.usage`, this is the view across entries.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pubdata.catalog.classes import EntryState
from pubdata.db.models import CatalogEntry, DatasetVersion, Objection, UsageDaily
from pubdata.workflow.objection_states import ObjectionState


@dataclass(frozen=True)
class Used:
    code: str
    name: str
    calls: int
    rows: int


def calls_per_day(session: Session, since: dt.date, until: dt.date) -> list[tuple[dt.date, int, int, int]]:
    """(day, queries, exports, rows) over every entry, days with use only, oldest first."""
    rows = session.execute(
        select(
            UsageDaily.day,
            func.coalesce(func.sum(UsageDaily.queries), 0),
            func.coalesce(func.sum(UsageDaily.exports), 0),
            func.coalesce(func.sum(UsageDaily.rows), 0),
        )
        .where(UsageDaily.day >= since, UsageDaily.day <= until)
        .group_by(UsageDaily.day)
        .order_by(UsageDaily.day)
    )
    return [(day, int(q), int(e), int(r)) for day, q, e, r in rows]


def most_used(session: Session, since: dt.date, limit: int = 8) -> list[Used]:
    """Published entries with the most queries and exports since `since`, busiest first."""
    calls = func.sum(UsageDaily.queries + UsageDaily.exports)
    rows = session.execute(
        select(CatalogEntry.code, CatalogEntry.name, calls, func.sum(UsageDaily.rows))
        .join(UsageDaily, UsageDaily.entry_id == CatalogEntry.id)
        .where(UsageDaily.day >= since, CatalogEntry.state == EntryState.PUBLISHED)
        .group_by(CatalogEntry.code, CatalogEntry.name)
        .order_by(calls.desc(), CatalogEntry.code)
        .limit(limit)
    )
    return [Used(code, name, int(c or 0), int(r or 0)) for code, name, c, r in rows]


def quality_issues(session: Session) -> dict[str, int]:
    """Columns with problems in each entry's newest version (entries without any left out)."""
    newest = (
        select(DatasetVersion.entry_id, func.max(DatasetVersion.version).label("version"))
        .group_by(DatasetVersion.entry_id)
        .subquery()
    )
    rows = session.execute(
        select(CatalogEntry.code, DatasetVersion.quality)
        .join(DatasetVersion, DatasetVersion.entry_id == CatalogEntry.id)
        .join(
            newest,
            (newest.c.entry_id == DatasetVersion.entry_id) & (newest.c.version == DatasetVersion.version),
        )
        .order_by(CatalogEntry.code)
    )
    found: dict[str, int] = {}
    for code, quality in rows:
        columns = (quality or {}).get("columns", {})
        problems = sum(1 for c in columns.values() if c.get("problems"))
        if problems:
            found[code] = problems
    return found


def flagged_objections(session: Session, entry_code: str) -> int:
    """How many objections hold records of the entry flagged as disputed right now."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Objection)
            .join(CatalogEntry, Objection.entry_id == CatalogEntry.id)
            .where(CatalogEntry.code == entry_code, Objection.state == ObjectionState.FLAGGED.value)
        )
        or 0
    )
