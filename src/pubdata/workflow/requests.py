"""Sharing requests (REQ-15): the consumer's cart of entries, and its submission into the workflow.

A request states, once for all its entries, the duty it rests on, the purpose and scenario, the
consuming application, the period of use and the delivery mode; each item names an entry, the
fields wanted and optionally a region. Drafts may be incomplete; `submit` checks everything and
either moves every item to the competent department's check or changes nothing, saying what is
missing. The checks a grant will face are the gateway's own (`pubdata.gateway.grants`), run here
early so that a request that could never become a grant is refused at the door.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from pubdata import audit
from pubdata.catalog.classes import EntryState, ShareClass
from pubdata.catalog.service import get_entry
from pubdata.db.models import Application, CatalogEntry, Organisation, RequestItem, SharingRequest, aware
from pubdata.errors import InputError, NotFound, PubdataError, RuleViolation
from pubdata.gateway.grant_terms import check_period, granted_fields, granted_region
from pubdata.gateway.roles import NotAuthorised, Principal, Role
from pubdata.messages import text
from pubdata.settings import SettingsFile
from pubdata.workflow.notify import notify
from pubdata.workflow.parties import competent_people, require_member
from pubdata.workflow.request_states import Action, ItemState
from pubdata.workflow.working_days import deadline_for

DELIVERY_MODES: Final = ("api", "bulk", "subscription")
#: What a request must state before it is submitted, with the words a refusal uses.
REQUIRED_TERMS: Final = {
    "legal_basis": "legal basis or duty (法律依据/履职依据)",
    "purpose": "purpose (用途)",
    "scenario": "scenario (应用场景)",
    "application": "consuming application (应用系统)",
    "valid_from": "start of the period of use",
    "valid_until": "end of the period of use",
}


def item_target(item: RequestItem) -> str:
    return f"request-item:{item.id}"


def _requester_org(principal: Principal, step: str) -> Organisation:
    org = principal.organisation
    if org is None or not principal.has_role(Role.CONSUMER):
        raise NotAuthorised(
            text(
                "{login} may not {step}: only 使用单位 staff (consumer) may",
                login=principal.user.login,
                step=step,
            )
        )
    return org


def _application(session: Session, code: str | None) -> Application | None:
    if code is None or not code.strip():
        return None
    app = session.scalar(select(Application).where(Application.code == code.strip()))
    if app is None:
        raise NotFound(text("no application with the code {code!r}", code=code))
    return app


def create_request(
    session: Session,
    principal: Principal,
    *,
    application: str | None = None,
    legal_basis: str = "",
    purpose: str = "",
    scenario: str = "",
    delivery_mode: str = "api",
    valid_from: dt.datetime | None = None,
    valid_until: dt.datetime | None = None,
) -> SharingRequest:
    """A draft request of the caller's organisation; nothing is checked against rules yet."""
    org = _requester_org(principal, "create a sharing request")
    if delivery_mode not in DELIVERY_MODES:
        raise InputError(
            text(
                "delivery mode {mode!r} is not one of {modes}",
                mode=delivery_mode,
                modes=", ".join(DELIVERY_MODES),
            ),
            column="delivery_mode",
        )
    request = SharingRequest(
        requester=org,
        application=_application(session, application),
        requested_by=principal.user.login,
        legal_basis=legal_basis.strip(),
        purpose=purpose.strip(),
        scenario=scenario.strip(),
        delivery_mode=delivery_mode,
        valid_from=aware(valid_from) if valid_from else None,
        valid_until=aware(valid_until) if valid_until else None,
    )
    session.add(request)
    session.flush()
    audit.record(
        session, principal.user.login, "request.create", f"request:{request.id}", organisation=org.name
    )
    return request


def own_draft(session: Session, principal: Principal, request_id: int, step: str) -> SharingRequest:
    """The caller's organisation's request; another organisation's is not found (REQ-15 privacy)."""
    request = session.get(SharingRequest, request_id)
    org = principal.organisation
    if request is None or org is None or request.requester_org_id != org.id:
        raise NotFound(text("no sharing request {request_id}", request_id=request_id))
    require_member(principal, request.requester, Role.CONSUMER, step)
    if request.state != "draft":
        raise RuleViolation(
            text(
                "request {request_id} is {state}; only a draft can be changed",
                request_id=request_id,
                state=request.state,
            ),
            "REQ-15",
        )
    return request


def add_item(
    session: Session,
    principal: Principal,
    request_id: int,
    entry_code: str,
    fields: Iterable[str],
    *,
    region_prefix: str | None = None,
    region_field: str | None = None,
    dispute_reason: str | None = None,
) -> RequestItem:
    """Put an entry in the cart with the fields and region wanted."""
    request = own_draft(session, principal, request_id, "add to a sharing request")
    entry = get_entry(session, entry_code)
    if entry.provider_id == request.requester_org_id:
        raise InputError(
            text(
                "{organisation} provides {code} and reads it without a grant",
                organisation=request.requester.name,
                code=entry.code,
            )
        )
    if entry.state is EntryState.DRAFT:
        # Another organisation's draft is absent from the public catalogue: answered exactly as an
        # unknown code, so that the cart cannot probe for it or its fields.
        raise NotFound(text("no catalogue entry {code!r}", code=entry_code))
    if any(i.entry_id == entry.id for i in request.items):
        raise InputError(
            text("request {request_id} already asks for {code}", request_id=request.id, code=entry.code),
            column="entry",
        )
    prefix, region = granted_region(entry, region_prefix, region_field)
    item = RequestItem(
        entry=entry,
        fields=granted_fields(entry, fields),
        region_prefix=prefix,
        region_field=region,
        dispute_reason=(dispute_reason or "").strip() or None,
    )
    request.items.append(item)
    session.flush()
    return item


def _refuse(session: Session, actor: str, target: str, why: RuleViolation) -> None:
    audit.record_refusal(session, actor, "request.submit", target, reason=str(why), req=why.req)
    raise why


def _check_item(session: Session, request: SharingRequest, item: RequestItem, actor: str) -> None:
    entry: CatalogEntry = item.entry
    target = item_target(item)
    if entry.provider_id == request.requester_org_id:
        raise InputError(
            text(
                "{organisation} provides {code} and reads it without a grant",
                organisation=request.requester.name,
                code=entry.code,
            )
        )
    if entry.state is not EntryState.PUBLISHED:
        why = RuleViolation(
            text(
                "entry {code} is {state}; only published entries can be requested",
                code=entry.code,
                state=entry.state.value,
            )
        )
        _refuse(session, actor, target, why)
    if entry.share_class is ShareClass.NOT_SHARED and not item.dispute_reason:
        why = RuleViolation(
            text(
                "entry {code} is not shared (不予共享): it can be asked for only through a dispute; "
                "give the item a dispute reason",
                code=entry.code,
            ),
            "REQ-16",
        )
        _refuse(session, actor, target, why)
    granted_fields(entry, item.fields)
    granted_region(entry, item.region_prefix, item.region_field)


def submit(
    session: Session, principal: Principal, request_id: int, settings: SettingsFile, now: dt.datetime
) -> SharingRequest:
    """Check the whole request, then start every item's check by the competent department."""
    request = own_draft(session, principal, request_id, "submit a sharing request")
    actor = principal.user.login
    missing = [words for name, words in REQUIRED_TERMS.items() if not getattr(request, name)]
    if not request.items:
        missing.append("at least one entry")
    if missing:
        raise InputError(
            text(
                "request {request_id} cannot be submitted yet: it lacks {missing}",
                request_id=request.id,
                missing="; ".join(missing),
            )
        )
    app = request.application
    if app is None or request.valid_from is None or request.valid_until is None:  # refused just above
        raise PubdataError(f"request {request.id} passed the check of its terms without them")
    target = f"request:{request.id}"
    if app.organisation_id != request.requester_org_id:
        _refuse(
            session,
            actor,
            target,
            RuleViolation(
                text("application {code} belongs to another organisation", code=app.code), "REQ-15"
            ),
        )
    if not app.active:
        _refuse(
            session,
            actor,
            target,
            RuleViolation(text("application {code} is deactivated", code=app.code), "REQ-15"),
        )
    for item in request.items:
        _check_item(session, request, item, actor)
        tenant = settings.for_tenant(item.entry.provider.division_code)
        late = check_period(aware(request.valid_from), aware(request.valid_until), now, tenant)
        if late is not None:
            _refuse(session, actor, target, late)
    request.state, request.submitted_at = "submitted", now
    for item in request.items:
        division = item.entry.provider.division_code
        due = deadline_for("check", now, settings.for_tenant(division).deadlines)
        item.state, item.step_started_at, item.due_at = ItemState.PENDING_CHECK, now, due.astimezone(dt.UTC)
        item.lock_version += 1
        session.flush()
        audit.record(
            session, actor, f"request.{Action.SUBMIT}", item_target(item),
            request_id=request.id, entry=item.entry.code, from_state=ItemState.DRAFT, to_state=item.state,
            due_at=item.due_at,
        )  # fmt: skip
        notify(
            session,
            competent_people(session, division, excluding=request.requester),
            "request.pending_check",
            f"待审核：{request.requester.name} 申请 {item.entry.name}",
            f"{request.requester.name} 申请共享 {item.entry.code}，用途：{request.purpose}。"
            f"请在 {due:%Y-%m-%d} 前审核。",
            f"/requests/{request.id}",
            settings.for_tenant(division),
        )
    return request
