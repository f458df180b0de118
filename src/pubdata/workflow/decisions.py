"""Moving a requested entry through the workflow (REQ-16), and making its grant (REQ-17).

Each step is one transaction: the item is claimed with a conditional ``UPDATE … WHERE state = seen
AND lock_version = seen`` (so of two decisions racing, exactly one wins on SQLite and PostgreSQL
alike), then its grant is made, revoked or renewed through `pubdata.gateway.grants` — the gateway's
own checks, not a copy — then the step is audited and the next party told. Claiming first also
orders the locks (item row, then the audit chain) the same way in every step, so two steps never
wait on each other. A refusal rolls everything back and is audited on its own afterwards, so it
survives.

A decision may narrow what was asked — fewer fields, a region inside the one asked, an earlier end,
de-identification per field — and never widen it (`pubdata.workflow.narrowing`). No one decides on a
request of their own organisation, and a coordinated approval of not-shared data is granted only once
a second party countersigns it (`pubdata.workflow.duties`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pubdata import audit
from pubdata.db.models import AuditEvent, Grant, RequestItem, User, aware
from pubdata.errors import InputError, NotFound, PubdataError, RuleViolation
from pubdata.gateway import grants, raw_assessments
from pubdata.gateway.roles import NotAuthorised, Principal, Role
from pubdata.messages import text
from pubdata.settings import Settings, SettingsFile
from pubdata.workflow import duties
from pubdata.workflow.narrowing import Decision as Decision
from pubdata.workflow.narrowing import Terms, narrowed, terms_detail, terms_from_detail
from pubdata.workflow.notify import notify
from pubdata.workflow.parties import (
    competent_people,
    is_competent_for,
    people,
    require_competent,
    require_member,
)
from pubdata.workflow.request_states import (
    OPEN_STEPS,
    Action,
    ItemState,
    Party,
    after_check,
    after_coordination,
    transition,
)
from pubdata.workflow.request_views import item_facts
from pubdata.workflow.requests import item_target
from pubdata.workflow.working_days import deadline_for


class AlreadyDecided(RuleViolation):
    """Someone else moved the item between our read and our write."""


def act(
    sessions: Callable[[], Session],
    principal: Principal,
    item_id: int,
    action: Action,
    decision: Decision,
    settings: SettingsFile,
    now: dt.datetime,
) -> dict[str, Any]:
    """Take `action` on an item as `principal`, all or nothing; returns the item as it now stands."""
    login = principal.user.login
    try:
        with sessions() as session, session.begin():
            item = _take(session, principal, item_id, action, decision, settings, now)
            return item_facts(item, now)
    except (RuleViolation, NotAuthorised) as why:
        rule = {"rule": duties.RULE} if isinstance(why, duties.SeparationOfDuties) else {}
        with sessions() as session, session.begin():
            audit.record_refusal(
                session, login, f"request.{action}", f"request-item:{item_id}",
                reason=str(why), req=getattr(why, "req", None), **rule,
            )  # fmt: skip
        raise


def _authorise(
    principal: Principal, item: RequestItem, party: Party, action: Action, tenant: Settings, coordinator: str
) -> None:
    step = f"{action.value} ({action.label}) request item {item.id}"
    provider, division = item.entry.provider, item.entry.provider.division_code
    if party is Party.REQUESTER:
        require_member(principal, item.request.requester, Role.CONSUMER, step)
    elif party is Party.PROVIDER:
        require_member(principal, provider, Role.PROVIDER, step)
    elif party is Party.COMPETENT:
        require_competent(principal, division, step)
    elif party is Party.PROVIDER_OR_COMPETENT:
        if not is_competent_for(principal, division):
            require_member(principal, provider, Role.PROVIDER, step)
    elif party is Party.COUNTERSIGNER:
        duties.require_countersigner(principal, item, coordinator, tenant, step)
    else:
        raise NotAuthorised(
            text(
                "{login} may not {step}: the platform does that by itself",
                login=principal.user.login,
                step=step,
            )
        )
    duties.require_outsider(principal, item, party, step)


def claim(
    session: Session, item: RequestItem, seen: ItemState, to: ItemState, now: dt.datetime, tenant: Settings
) -> None:
    """Move the item if nobody moved it since we read it; opens the next step's clock."""
    step = OPEN_STEPS.get(to)
    due = deadline_for(step, now, tenant.deadlines).astimezone(dt.UTC) if step else None
    moved = session.execute(
        update(RequestItem)
        .where(
            RequestItem.id == item.id,
            RequestItem.state == seen.value,
            RequestItem.lock_version == item.lock_version,
        )
        .values(
            state=to.value,
            lock_version=item.lock_version + 1,
            step_started_at=now if step else None,
            due_at=due,
            escalated_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise AlreadyDecided(
            text("request item {item_id} was already decided by someone else; reload it", item_id=item.id),
            "REQ-16",
        )
    session.refresh(item)


def _take(
    session: Session,
    principal: Principal,
    item_id: int,
    action: Action,
    decision: Decision,
    settings: SettingsFile,
    now: dt.datetime,
) -> RequestItem:
    # Whether an outsider may learn that the item exists is the caller's concern (the API answers
    # 404 first); here an outsider's attempt is a refusal worth auditing.
    item = session.get(RequestItem, item_id)
    if item is None:
        raise NotFound(text("no request item {item_id}", item_id=item_id))
    seen = ItemState(item.state)
    step = transition(seen, action)
    tenant = settings.for_tenant(item.entry.provider.division_code)
    coordinator, proposed = _proposal(session, item) if step.party is Party.COUNTERSIGNER else ("", None)
    _authorise(principal, item, step.party, action, tenant, coordinator)
    reason = (decision.reason or "").strip() or None
    if step.needs_reason and reason is None:
        raise InputError(
            text("{action} ({label}) needs a reason", action=action.value, label=action.label),
            column="reason",
        )
    to = _next_state(item, action, step.to[0])
    login = principal.user.login
    detail: dict[str, Any] = {}
    if action is Action.RENEW:
        detail["valid_until"] = _renewal_end(item, decision)
    if to is ItemState.PENDING_CONSENT:  # checked now (the floor too), granted when countersigned
        offered = narrowed(item, decision)
        raw_assessments.require_floor(session, item.entry, item.request.requester_org_id, offered, now)
        detail.update(proposed=terms_detail(offered), countersigner=duties.countersigner_of(tenant))
    if action is Action.CONSENT:
        if decision.narrows():
            raise InputError(
                text(
                    "a countersignature takes the coordinated terms as they are; "
                    "to ask for other terms, withhold consent with a reason"
                )
            )
        detail.update(coordinated_by=coordinator, countersigned_by=login, approvers=[coordinator, login])
    claim(session, item, seen, to, now, tenant)
    if action is Action.DISPUTE:
        item.dispute_reason = reason
    if step.party is not Party.REQUESTER:
        item.decided_by, item.decided_at, item.reason = login, now, reason
    if to is ItemState.APPROVED and seen is not ItemState.PENDING_RENEWAL:
        terms = proposed or narrowed(item, decision if action is not Action.CHECK else Decision())
        coordinated = action in (Action.COORDINATE_APPROVE, Action.CONSENT)
        grant = _make_grant(
            session, item, terms, tenant, login, now, coordination=item_target(item) if coordinated else None
        )
        item.grant_id = grant.id
        detail.update(fields=list(grant.fields), region_prefix=grant.region_prefix, deid=dict(grant.deid))
        detail.update(valid_until=aware(grant.valid_until))
    elif action is Action.REVOKE and item.grant_id is not None:
        grants.revoke_grant(session, item.grant_id, actor=login, reason=reason or "", now=now)
    elif action is Action.APPROVE_RENEWAL and item.grant_id is not None:
        until = _renewed_until(session, item, decision)
        grants.renew_grant(session, item.grant_id, valid_until=until, actor=login, settings=tenant, now=now)
        detail["valid_until"] = until
    session.flush()
    audit.record(
        session, login, f"request.{action}", item_target(item),
        request_id=item.request_id, entry=item.entry.code, from_state=seen.value, to_state=to.value,
        reason=reason, grant_id=item.grant_id, due_at=item.due_at, **detail,
    )  # fmt: skip
    _tell(session, item, action, to, tenant, coordinator or login)
    return item


def _next_state(item: RequestItem, action: Action, first: ItemState) -> ItemState:
    """The state a step leads to: the check and a coordinated approval depend on the entry."""
    if action is Action.CHECK:
        return after_check(item.entry.share_class, item.dispute_reason)
    if action is Action.COORDINATE_APPROVE:
        return after_coordination(item.entry.share_class)
    return first


def _proposal(session: Session, item: RequestItem) -> tuple[str, Terms]:
    """Who approved the item in coordination and the terms waiting for a countersignature (from the
    audit log, the record of that approval)."""
    event = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.target == item_target(item))
        .where(AuditEvent.action == f"request.{Action.COORDINATE_APPROVE}", AuditEvent.outcome == "ok")
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    if event is None or "proposed" not in event.detail:
        raise NotFound(text("request item {item_id} has no coordinated approval on record", item_id=item.id))
    return event.actor, terms_from_detail(event.detail["proposed"])


def _make_grant(
    session: Session,
    item: RequestItem,
    terms: Terms,
    tenant: Settings,
    login: str,
    now: dt.datetime,
    *,
    coordination: str | None = None,
) -> Grant:
    request = item.request
    if request.valid_from is None or request.application is None:  # submitting required both
        raise PubdataError(f"request {request.id} was decided without its application or period")
    return grants.grant_access(
        session,
        organisation=request.requester.name,
        application=request.application.code,
        entry_code=item.entry.code,
        fields=terms.fields,
        region_prefix=terms.region_prefix,
        region_field=terms.region_field,
        deid=terms.deid,
        purpose=request.purpose,
        legal_basis=request.legal_basis,
        valid_from=max(aware(request.valid_from), now),
        valid_until=terms.valid_until,
        actor=login,
        settings=tenant,
        now=now,
        coordination=coordination,
    )


def _renewal_end(item: RequestItem, decision: Decision) -> dt.datetime:
    if decision.valid_until is None:
        raise InputError(text("a renewal names the new end of the period of use"), column="valid_until")
    until = aware(decision.valid_until)
    current = item.grant.valid_until if item.grant is not None else None
    if current is not None and until <= aware(current):
        raise InputError(
            text(
                "the grant already runs until {until:%Y-%m-%d}; a renewal asks for a later end",
                until=aware(current),
            ),
            column="valid_until",
        )
    return until


def _renewed_until(session: Session, item: RequestItem, decision: Decision) -> dt.datetime:
    """The end the requester asked for (from the audit log, the record of the ask), or an earlier one."""
    asked_event = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.target == item_target(item), AuditEvent.action == f"request.{Action.RENEW}")
        .where(AuditEvent.outcome == "ok")
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    if asked_event is None:
        raise NotFound(text("request item {item_id} has no renewal request on record", item_id=item.id))
    asked = aware(dt.datetime.fromisoformat(str(asked_event.detail["valid_until"])))
    until = aware(decision.valid_until) if decision.valid_until else asked
    if until > asked:
        raise InputError(
            text("the renewal asked for {asked:%Y-%m-%d}; a decision cannot go beyond it", asked=asked),
            column="valid_until",
        )
    return until


def requester_people(session: Session, item: RequestItem) -> list[User]:
    """The person who asked, or the requesting organisation's consumer staff if that person left."""
    request = item.request
    user = session.scalar(select(User).where(User.login == request.requested_by, User.active.is_(True)))
    return [user] if user is not None else people(session, [request.requester], Role.CONSUMER)


def _tell(
    session: Session, item: RequestItem, action: Action, to: ItemState, tenant: Settings, coordinator: str
) -> None:
    division = item.entry.provider.division_code
    next_actors: list[User] = []
    if to in (ItemState.PENDING_DECISION, ItemState.PENDING_RENEWAL):
        next_actors = people(session, [item.entry.provider], Role.PROVIDER)
    elif to is ItemState.IN_COORDINATION:
        next_actors = competent_people(session, division, excluding=item.request.requester)
    elif to is ItemState.PENDING_CONSENT:
        next_actors = duties.countersigners(session, item, coordinator, tenant)
    told = {u.id: u for u in next_actors}
    if to not in OPEN_STEPS or action in (Action.CHECK, Action.REFUSE_RENEWAL):
        told.update({u.id: u for u in requester_people(session, item)})
    due = f"，请在 {aware(item.due_at):%Y-%m-%d} 前办理" if item.due_at is not None else ""
    notify(
        session,
        told.values(),
        f"request.{action}",
        f"{item.entry.name}：{action.label}，现为{to.label}",
        f"共享申请 {item.request_id} 的 {item.entry.code}（{item.request.requester.name}）{action.label}，"
        f"当前状态：{to.label}{due}。{('理由：' + item.reason) if item.reason else ''}",
        f"/requests/{item.request_id}",
        tenant,
    )
