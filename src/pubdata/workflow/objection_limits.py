"""How much objecting one person and one entry take (REQ-12): records per objection, objections per
window, and one notification to the competent department per burst.

An accepted objection marks its records disputed in every answer, and every new one lands in the
competent department's inbox; without limits one account could flood both. The limits are settings
(``objection_max_records``, ``objection_max_per_user``, ``objection_max_per_entry`` over
``objection_window_hours``, see docs/settings.md), read for the tenant of the entry's provider.

The windows are counted in the database — objections raised since ``now`` minus the window — rather
than in a counter in memory: every worker of a multi-worker server sees the same rows, a restart
forgets nothing, and a test passes ``now``. Two raises committed at the same instant by two workers
may both pass the last free place; the limit can be passed by the number of workers, never more.

Example:
    >>> from pubdata.settings import Settings
    >>> check_record_count(3, Settings(objection_max_records=2))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pubdata.errors.InputError: column records: an objection may name at most 2 records, not 3; ...
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pubdata.db.models import CatalogEntry, Objection, aware
from pubdata.errors import InputError, RuleViolation
from pubdata.messages import text
from pubdata.settings import Settings

#: The state in which an objection waits for the competent department (`ObjectionState.SUBMITTED`).
_WAITING = "submitted"


class ObjectionLimitReached(RuleViolation):
    """The person or the entry has taken as many objections as the window allows (HTTP 429)."""


def check_record_count(count: int, settings: Settings) -> None:
    """Refuse a list of records longer than ``objection_max_records``, before any is checked."""
    most = settings.objection_max_records
    if count > most:
        raise InputError(
            text(
                "an objection may name at most {most} records, not {count}; raise one objection per "
                "group of records that are wrong for the same reason",
                most=most,
                count=count,
            ),
            column="records",
        )


def _window(now: dt.datetime, settings: Settings) -> tuple[dt.datetime, dt.datetime]:
    end = now.astimezone(dt.UTC)
    return end - dt.timedelta(hours=settings.objection_window_hours), end


def _recent(
    session: Session, window: tuple[dt.datetime, dt.datetime], *where: object
) -> tuple[int, dt.datetime | None]:
    """How many objections matching `where` were raised in `window`, and when the oldest was."""
    count, oldest = session.execute(
        select(func.count(Objection.id), func.min(Objection.created_at)).where(
            Objection.created_at >= window[0],
            Objection.created_at <= window[1],  # a replay at an earlier instant ignores later rows
            *where,  # type: ignore[arg-type]
        )
    ).one()
    return int(count), oldest


def check_rate(
    session: Session, login: str, entry: CatalogEntry, now: dt.datetime, settings: Settings
) -> None:
    """Refuse a new objection once `login`, or anyone on `entry`, reached the window's limit."""
    window = _window(now, settings)
    hours = settings.objection_window_hours
    mine, my_oldest = _recent(session, window, Objection.raised_by == login)
    if mine >= settings.objection_max_per_user:
        raise ObjectionLimitReached(
            text(
                "{login} has raised {count} objections in the last {hours} hours, as many as one "
                "person may; try again after {after}",
                login=login,
                count=mine,
                hours=hours,
                after=_free_at(my_oldest, now, settings),
            ),
            "REQ-12",
        )
    theirs, entry_oldest = _recent(session, window, Objection.entry_id == entry.id)
    if theirs >= settings.objection_max_per_entry:
        raise ObjectionLimitReached(
            text(
                "entry {code} has taken as many objections in the last {hours} hours as it may; "
                "try again after {after}",
                code=entry.code,
                hours=hours,
                after=_free_at(entry_oldest, now, settings),
            ),
            "REQ-12",
        )


def _free_at(oldest: dt.datetime | None, now: dt.datetime, settings: Settings) -> str:
    """When the oldest counted objection leaves the window, to the minute, in UTC."""
    start = aware(oldest) if oldest is not None else now  # none counted: a limit of 0 stops all
    free = start.astimezone(dt.UTC) + dt.timedelta(hours=settings.objection_window_hours, minutes=1)
    return f"{free:%Y-%m-%d %H:%M} UTC"


def bureau_already_told(
    session: Session, entry: CatalogEntry, objection_id: int, now: dt.datetime, settings: Settings
) -> bool:
    """Whether another objection on `entry`, raised in the window, still waits for the competent
    department: its notification already sent them to the entry's waiting list, so a burst of
    objections makes one notification, not one each."""
    count, _ = _recent(
        session,
        _window(now, settings),
        Objection.entry_id == entry.id,
        Objection.state == _WAITING,
        Objection.id != objection_id,
    )
    return count > 0
