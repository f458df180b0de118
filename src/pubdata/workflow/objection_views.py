"""Reading objections (REQ-12): who may see one, what waits for whom, and the history.

An objection names records, often by identity number, so it is private to its parties
(`objection_access`); anyone else is told it does not exist. Working days left are computed when
read; they change with the calendar, not the row.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from pubdata.db.models import AuditEvent, CatalogEntry, Objection, aware, iso_or_none
from pubdata.errors import InputError
from pubdata.gateway.roles import Principal
from pubdata.messages import text
from pubdata.workflow.objection_access import is_competent, is_provider, may_see, unknown_objection
from pubdata.workflow.objection_states import WAITING_ON, Actor, ObjectionState
from pubdata.workflow.objections import get_objection, target
from pubdata.workflow.working_days import (
    CalendarYearUnknown,
    deadline_is_provisional,
    is_overdue,
    working_days_between,
)

ListView = Literal["all", "mine", "waiting", "overdue"]
LIST_VIEWS: Final = ("all", "mine", "waiting", "overdue")


def waits_for(principal: Principal, objection: Objection) -> bool:
    """Whether the caller is whom the objection's current step waits for."""
    actor = WAITING_ON.get(ObjectionState(objection.state))
    if actor is Actor.COMPETENT:
        return is_competent(principal, objection)
    return actor is Actor.PROVIDER and is_provider(principal, objection)


def overdue(objection: Objection, now: dt.datetime) -> bool:
    return objection.due_at is not None and is_overdue(aware(objection.due_at), now)


def list_objections(
    session: Session,
    principal: Principal,
    *,
    view: ListView | str = "all",
    entry: str | None = None,
    now: dt.datetime,
) -> list[Objection]:
    """The objections the caller may see, newest first: all, raised by the caller (`mine`), waiting
    for the caller (`waiting`) or past their deadline (`overdue`); optionally of one entry."""
    if view not in LIST_VIEWS:
        raise InputError(
            text("unknown view {view!r}; use one of {views}", view=view, views=", ".join(LIST_VIEWS)),
            column="view",
        )
    query = (
        select(Objection)
        .options(selectinload(Objection.entry).selectinload(CatalogEntry.provider))
        .order_by(Objection.id.desc())
    )
    if entry is not None:
        query = query.join(CatalogEntry, Objection.entry_id == CatalogEntry.id).where(
            CatalogEntry.code == entry
        )
    if view == "mine":
        query = query.where(Objection.raised_by == principal.user.login)
    found = [o for o in session.scalars(query) if may_see(principal, o)]
    if view == "waiting":
        found = [o for o in found if waits_for(principal, o)]
    elif view == "overdue":
        found = [o for o in found if overdue(o, now)]
    return found


def show_objection(session: Session, principal: Principal, objection_id: int) -> Objection:
    objection = get_objection(session, objection_id)
    if not may_see(principal, objection):
        raise unknown_objection(objection_id)
    return objection


def history(session: Session, objection_id: int) -> list[AuditEvent]:
    """Every move and refusal on the objection, oldest first, from the audit log."""
    query = select(AuditEvent).where(AuditEvent.target == target(objection_id)).order_by(AuditEvent.id)
    return list(session.scalars(query))


def objection_facts(objection: Objection, now: dt.datetime) -> dict[str, Any]:
    state = ObjectionState(objection.state)
    left: int | None = None
    if objection.due_at is not None:
        try:
            left = working_days_between(now, aware(objection.due_at))
        except CalendarYearUnknown:
            left = None  # shown as unknown rather than failing the whole listing
    return {
        "id": objection.id,
        "entry": objection.entry.code,
        "state": {"value": state.value, "label": state.label},
        "raised_by": objection.raised_by,
        "raiser_kind": objection.raiser_kind,
        "records": list(objection.record_keys),
        "description": objection.description,
        "due_at": iso_or_none(objection.due_at),
        "due_provisional": objection.due_at is not None and deadline_is_provisional(aware(objection.due_at)),
        "working_days_left": left,
        "overdue": overdue(objection, now),
        "escalated_at": iso_or_none(objection.escalated_at),
        "handled_by": objection.handled_by,
        "reason": objection.reason,
        "corrected_version": objection.corrected_version,
        "created_at": iso_or_none(objection.created_at),
        "updated_at": iso_or_none(objection.updated_at),
    }


def event_facts(event: AuditEvent) -> dict[str, Any]:
    return {
        "at": iso_or_none(event.at),
        "actor": event.actor,
        "action": event.action,
        "outcome": event.outcome,
        "detail": dict(event.detail),
    }
