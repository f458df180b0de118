"""Reading sharing requests: who may see one, what each party is waiting for, and the history.

A request is private to the parties of its items: the requesting organisation, the providers of
the entries asked for and the competent departments over them. Anyone else is told it does not
exist, so request numbers reveal nothing. Working days left are computed when read (they change
with the calendar, not with the row).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final, Literal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from pubdata.db.models import AuditEvent, CatalogEntry, RequestItem, SharingRequest, aware
from pubdata.errors import InputError, NotFound
from pubdata.gateway.roles import Principal, Role
from pubdata.messages import text
from pubdata.workflow.parties import is_competent_for
from pubdata.workflow.request_states import OPEN_STEPS, TRANSITIONS, ItemState, Party, actions_from
from pubdata.workflow.working_days import (
    LOCAL_TZ,
    deadline_is_provisional,
    is_overdue,
    working_days_between,
)

WaitingView = Literal["provider", "competent", "overdue"]
WAITING_VIEWS: Final = ("provider", "competent", "overdue")
#: Which open states wait for which party.
WAITING_FOR: Final = {
    "provider": (ItemState.PENDING_DECISION, ItemState.PENDING_RENEWAL, ItemState.PENDING_CONSENT),
    "competent": (ItemState.PENDING_CHECK, ItemState.IN_COORDINATION),
}


def _load() -> Any:
    return (
        selectinload(SharingRequest.items)
        .selectinload(RequestItem.entry)
        .selectinload(CatalogEntry.provider),
        selectinload(SharingRequest.requester),
        selectinload(SharingRequest.application),
    )


def can_see(principal: Principal, request: SharingRequest) -> bool:
    """Whether the caller is a party to the request: requester, a provider, or competent over one."""
    org = principal.organisation
    if org is None:
        return False
    if org.id == request.requester_org_id:
        return True
    return any(
        item.entry.provider_id == org.id or is_competent_for(principal, item.entry.provider.division_code)
        for item in request.items
    )


def visible_request(session: Session, principal: Principal, request_id: int) -> SharingRequest:
    """The request if the caller is a party to it; otherwise it is not found."""
    request = session.scalar(select(SharingRequest).where(SharingRequest.id == request_id).options(*_load()))
    if request is None or not can_see(principal, request):
        raise NotFound(text("no sharing request {request_id}", request_id=request_id))
    return request


def item_facts(item: RequestItem, now: dt.datetime) -> dict[str, Any]:
    """One item as the API and the CLI show it, with the working days left on an open step."""
    state = ItemState(item.state)
    due = aware(item.due_at).astimezone(LOCAL_TZ) if item.due_at is not None and state in OPEN_STEPS else None
    request = item.request
    return {
        "id": item.id,
        "request_id": item.request_id,
        "requester": request.requester.name,
        "application": request.application.code if request.application else None,
        "purpose": request.purpose,
        "entry": item.entry.code,
        "entry_name": item.entry.name,
        "provider": item.entry.provider.name,
        "fields": list(item.fields),
        "region_prefix": item.region_prefix,
        "region_field": item.region_field,
        "dispute_reason": item.dispute_reason,
        "state": state.value,
        "state_label": state.label,
        "step": OPEN_STEPS.get(state),
        "due_at": due,
        # Counted on estimated holidays (a year the official calendar does not cover yet).
        "due_provisional": deadline_is_provisional(due) if due is not None else False,
        "working_days_left": working_days_between(now, due) if due is not None else None,
        "overdue": is_overdue(due, now) if due is not None else False,
        "escalated_at": aware(item.escalated_at) if item.escalated_at else None,
        "decided_by": item.decided_by,
        "decided_at": aware(item.decided_at) if item.decided_at else None,
        "reason": item.reason,
        "grant_id": item.grant_id,
        # What people may do next (expiry is the platform's own step).
        "actions": [
            a.value for a in actions_from(state) if TRANSITIONS[(state, a)].party is not Party.SYSTEM
        ],
    }


def request_facts(request: SharingRequest, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": request.id,
        "requester": request.requester.name,
        "requested_by": request.requested_by,
        "application": request.application.code if request.application else None,
        "legal_basis": request.legal_basis,
        "purpose": request.purpose,
        "scenario": request.scenario,
        "delivery_mode": request.delivery_mode,
        "valid_from": aware(request.valid_from) if request.valid_from else None,
        "valid_until": aware(request.valid_until) if request.valid_until else None,
        "state": request.state,
        "created_at": aware(request.created_at),
        "submitted_at": aware(request.submitted_at) if request.submitted_at else None,
        "items": [item_facts(i, now) for i in request.items],
    }


def list_mine(session: Session, principal: Principal) -> list[SharingRequest]:
    """The requests of the caller's organisation, newest first."""
    org = principal.organisation
    if org is None:
        return []
    query = select(SharingRequest).where(SharingRequest.requester_org_id == org.id).options(*_load())
    return list(session.scalars(query.order_by(SharingRequest.id.desc())))


def waiting(session: Session, principal: Principal, view: str, now: dt.datetime) -> list[RequestItem]:
    """Items waiting for the caller: as a provider, as a competent department, or overdue ones of
    either kind; earliest deadline first."""
    if view not in WAITING_VIEWS:
        raise InputError(
            text("unknown view {view!r}; one of {views}", view=view, views=", ".join(WAITING_VIEWS)),
            column="view",
        )
    states = [
        s for v in (("provider", "competent") if view == "overdue" else (view,)) for s in WAITING_FOR[v]
    ]
    query = (
        select(RequestItem)
        .where(RequestItem.state.in_([s.value for s in states]))
        .options(
            selectinload(RequestItem.entry).selectinload(CatalogEntry.provider),
            selectinload(RequestItem.request).selectinload(SharingRequest.requester),
            selectinload(RequestItem.request).selectinload(SharingRequest.application),
        )
        .order_by(RequestItem.due_at, RequestItem.id)
    )
    org = principal.organisation
    found = []
    for item in session.scalars(query):
        division = item.entry.provider.division_code
        mine_as_provider = (
            org is not None and item.entry.provider_id == org.id and principal.has_role(Role.PROVIDER)
        )
        provider_step = item.state in {s.value for s in WAITING_FOR["provider"]}
        if provider_step and not mine_as_provider:
            continue
        if not provider_step and not is_competent_for(principal, division):
            continue
        if view == "overdue" and not (item.due_at and is_overdue(aware(item.due_at), now)):
            continue
        found.append(item)
    return found


def history(session: Session, request: SharingRequest) -> list[AuditEvent]:
    """The audit events of the request and its items, oldest first (the log is the history)."""
    targets = [f"request:{request.id}", *(f"request-item:{i.id}" for i in request.items)]
    query = select(AuditEvent).where(
        or_(AuditEvent.target.in_(targets)), AuditEvent.action.startswith("request.")
    )
    return list(session.scalars(query.order_by(AuditEvent.id)))


def event_facts(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": aware(event.at),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "outcome": event.outcome,
        "detail": dict(event.detail),
    }
