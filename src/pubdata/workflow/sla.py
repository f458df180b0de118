"""Service levels of sharing requests (REQ-16): how many items stand where, which steps ended
within their deadline, and how many working days each step took.

The audit log is the record: every move of an item is an event carrying the state it left, the
state it entered and the deadline of the step it opened (``due_at``). A step ends with the next
move, so its length and whether it kept its deadline are read from two consecutive moves (at the
times the log recorded them); rows alone cannot say, since a move clears the deadline it met.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from pubdata.db.models import AuditEvent, CatalogEntry, RequestItem, SharingRequest, aware
from pubdata.gateway.roles import Principal
from pubdata.workflow.parties import is_competent_for
from pubdata.workflow.request_states import OPEN_STEPS, ItemState
from pubdata.workflow.working_days import LOCAL_TZ, CalendarYearUnknown, is_overdue, working_days_between


@dataclass(frozen=True)
class StepTaken:
    """One finished step of one item."""

    item: str
    step: str
    started: dt.datetime
    ended: dt.datetime
    due: dt.datetime
    working_days: int | None
    within: bool


def by_state(session: Session) -> dict[str, int]:
    """Items per state (drafts left out: nobody is waiting on them)."""
    rows = session.execute(select(RequestItem.state, func.count()).group_by(RequestItem.state))
    counts = {state: int(n) for state, n in rows if state != ItemState.DRAFT.value}
    return {s.value: counts[s.value] for s in ItemState if s.value in counts}


def _moment(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return aware(moment)


def steps_taken(session: Session) -> list[StepTaken]:
    """Every finished step of every item, from consecutive moves in the audit log."""
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.target.startswith("request-item:"), AuditEvent.outcome == "ok")
        .order_by(AuditEvent.id)
    )
    open_step: dict[str, tuple[str, dt.datetime, dt.datetime]] = {}
    found: list[StepTaken] = []
    for event in events:
        detail = event.detail or {}
        if "to_state" not in detail:  # escalations and other notes do not move the item
            continue
        at = aware(event.at)
        started = open_step.pop(event.target, None)
        if started is not None:
            step, since, due = started
            try:
                days: int | None = working_days_between(since, at)
            except CalendarYearUnknown:
                days = None
            found.append(StepTaken(event.target, step, since, at, due, days, at <= due))
        state = ItemState(detail["to_state"])
        due_at = _moment(detail.get("due_at"))
        if state in OPEN_STEPS and due_at is not None:
            open_step[event.target] = (OPEN_STEPS[state], at, due_at)
    return found


def _week(moment: dt.datetime) -> str:
    year, week, _ = moment.astimezone(LOCAL_TZ).isocalendar()
    return f"{year}-W{week:02d}"


def by_week(steps: list[StepTaken]) -> dict[str, dict[str, int]]:
    """Per ISO week of the step's end: ``{"within": n, "late": m}``, oldest week first."""
    weeks: dict[str, dict[str, int]] = defaultdict(lambda: {"within": 0, "late": 0})
    for taken in steps:
        weeks[_week(taken.ended)]["within" if taken.within else "late"] += 1
    return dict(sorted(weeks.items()))


def median_days(steps: list[StepTaken]) -> dict[str, float]:
    """Median working days per step (check, decide, coordinate), steps with known lengths only."""
    lengths: dict[str, list[int]] = defaultdict(list)
    for taken in steps:
        if taken.working_days is not None:
            lengths[taken.step].append(taken.working_days)
    order = list(dict.fromkeys(OPEN_STEPS.values()))
    return {s: float(statistics.median(lengths[s])) for s in order if lengths.get(s)}


def overdue_in_my_divisions(session: Session, principal: Principal, now: dt.datetime) -> list[RequestItem]:
    """Open items past their deadline at any step, of providers the caller is competent for —
    including steps that wait for a provider, which `request_views.waiting` leaves to the provider."""
    query = (
        select(RequestItem)
        .where(RequestItem.state.in_([s.value for s in OPEN_STEPS]), RequestItem.due_at.is_not(None))
        .options(
            selectinload(RequestItem.entry).selectinload(CatalogEntry.provider),
            selectinload(RequestItem.request).selectinload(SharingRequest.requester),
            selectinload(RequestItem.request).selectinload(SharingRequest.application),
        )
        .order_by(RequestItem.due_at, RequestItem.id)
    )
    return [
        item
        for item in session.scalars(query)
        if item.due_at is not None
        and is_overdue(aware(item.due_at), now)
        and is_competent_for(principal, item.entry.provider.division_code)
    ]
