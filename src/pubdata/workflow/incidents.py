"""Security incidents (REQ-28): recorded, classified, told to the competent department, tracked.

An organisation's staff (its security officer, provider or consumer staff) record an incident; the
competent department covering the organisation is told in the same transaction (``notified_at``).
The organisation then works it through ``reported → remediating → resolved``; only the competent
department closes it, and a resolved incident may be reopened. Every step leaves an
`IncidentUpdate` with a note, an audit event ``incident.<action>`` and moves by a conditional
UPDATE on ``lock_version``, so of two people acting at once exactly one wins.

Who reads: the organisation its own incidents, a competent department those of the divisions it
covers, security officers and auditors all of them (they answer for security platform-wide).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from pubdata import audit
from pubdata.db.models import CatalogEntry, Incident, IncidentUpdate, User, utcnow
from pubdata.errors import InputError, NotFound, RuleViolation
from pubdata.gateway.roles import NotAuthorised, Principal, Role
from pubdata.messages import text
from pubdata.settings import Settings
from pubdata.vocabulary import Labelled
from pubdata.workflow.notify import notify
from pubdata.workflow.parties import competent_people, is_competent_for, people, require_competent


class IncidentCategory(Labelled):
    DATA_LEAK = "data_leak", "数据泄露"
    TAMPERING = "tampering", "数据篡改"
    UNAUTHORISED_ACCESS = "unauthorised_access", "未授权访问"
    LOSS = "loss", "数据丢失"
    UNAVAILABILITY = "unavailability", "服务中断"
    OTHER = "other", "其他"


class Severity(Labelled):
    """China's four grades of a security incident, gravest first."""

    ESPECIALLY_MAJOR = "especially_major", "特别重大"
    MAJOR = "major", "重大"
    LARGER = "larger", "较大"
    GENERAL = "general", "一般"


class IncidentState(Labelled):
    REPORTED = "reported", "已报告"
    REMEDIATING = "remediating", "处置中"
    RESOLVED = "resolved", "已处置"
    CLOSED = "closed", "已关闭"


#: Roles of an organisation's own people who record and work its incidents.
STAFF_ROLES = (Role.SECURITY_OFFICER, Role.PROVIDER, Role.CONSUMER)
#: Roles that read every incident.
READ_ALL_ROLES = (Role.SECURITY_OFFICER, Role.AUDITOR)


@dataclass(frozen=True)
class Step:
    """One move of an incident: from which states, to which, and whether the department takes it."""

    sources: tuple[IncidentState, ...]
    target: IncidentState
    by_competent: bool = False


#: Every move after the report; a new move is a line here.
STEPS: dict[str, Step] = {
    "update": Step((IncidentState.REPORTED, IncidentState.REMEDIATING), IncidentState.REMEDIATING),
    "resolve": Step((IncidentState.REPORTED, IncidentState.REMEDIATING), IncidentState.RESOLVED),
    "reopen": Step((IncidentState.RESOLVED,), IncidentState.REMEDIATING),
    "close": Step((IncidentState.RESOLVED,), IncidentState.CLOSED, by_competent=True),
}


def _refused(session: Session, principal: Principal, action: str, target: str, error: Exception) -> None:
    req = error.req if isinstance(error, RuleViolation) else "REQ-28"
    audit.record_refusal(session, principal.user.login, action, target, reason=str(error), req=req)


def _require_staff(principal: Principal, organisation_id: int, step: str) -> None:
    org = principal.organisation
    if org is None or org.id != organisation_id or not principal.has_role(*STAFF_ROLES):
        raise NotAuthorised(
            text(
                "{login} may not {step}: only the organisation's own security officer, "
                "provider or consumer staff may",
                login=principal.user.login,
                step=step,
            )
        )


def _entry_codes(session: Session, codes: Sequence[str]) -> list[str]:
    wanted = {c.strip().lower() for c in codes if c.strip()}
    rows = session.execute(
        select(func.lower(CatalogEntry.code), CatalogEntry.code).where(
            func.lower(CatalogEntry.code).in_(wanted)
        )
    )
    found = {lowered: code for lowered, code in rows}
    if missing := sorted(wanted - found.keys()):
        raise InputError(
            text(
                "no catalogue entry {codes}: name affected entries by their catalogue code",
                codes=", ".join(missing),
            ),
            column="entry_codes",
        )
    return sorted(found.values())


def report(
    session: Session,
    principal: Principal,
    *,
    title: str,
    category: IncidentCategory,
    severity: Severity,
    occurred_at: dt.datetime,
    description: str = "",
    entry_codes: Sequence[str] = (),
    settings: Settings | None = None,
    now: dt.datetime | None = None,
) -> Incident:
    """Record an incident of the caller's organisation and tell its competent department at once."""
    now = (now or utcnow()).astimezone(dt.UTC)  # SQLite drops the zone: store UTC only
    org = principal.organisation
    try:
        if org is None:
            raise NotAuthorised(
                text("{login} belongs to no organisation and cannot report", login=principal.user.login)
            )
        _require_staff(principal, org.id, "report an incident")
    except NotAuthorised as refusal:
        _refused(session, principal, "incident.report", "incident:new", refusal)
        raise
    if not title.strip():
        raise InputError(text("an incident needs a title: say in a few words what happened"), column="title")
    if occurred_at.tzinfo is None:
        raise InputError(text("occurred_at needs a time zone (e.g. +08:00)"), column="occurred_at")
    if occurred_at > now:
        raise InputError(
            text(
                "occurred_at {occurred_at} is in the future; give when the incident happened",
                occurred_at=occurred_at.isoformat(),
            ),
            column="occurred_at",
        )
    incident = Incident(
        organisation_id=org.id,
        title=title.strip(),
        description=description.strip(),
        category=category.value,
        severity=severity.value,
        state=IncidentState.REPORTED.value,
        entry_codes=_entry_codes(session, entry_codes),
        occurred_at=occurred_at.astimezone(dt.UTC),
        reported_by=principal.user.login,
        reported_at=now,
    )
    session.add(incident)
    session.flush()
    session.add(
        IncidentUpdate(
            incident_id=incident.id,
            at=now,
            actor=principal.user.login,
            state=IncidentState.REPORTED.value,
            note=incident.description or incident.title,
        )
    )
    told = competent_people(session, org.division_code)
    if told:
        incident.notified_at = now
        tell_about(session, told, incident, "incident.reported", org.name, settings)
    session.flush()
    audit.record(
        session,
        principal.user.login,
        "incident.report",
        f"incident:{incident.id}",
        organisation=org.name,
        category=category.value,
        severity=severity.value,
        entries=incident.entry_codes,
        occurred_at=incident.occurred_at.isoformat(),
        notified=[u.login for u in told],
        req="REQ-28",
    )
    return incident


def tell_about(
    session: Session,
    users: Sequence[User],
    incident: Incident,
    kind: str,
    organisation_name: str,
    settings: Settings | None,
) -> None:
    severity, category = Severity(incident.severity), IncidentCategory(incident.category)
    state = IncidentState(incident.state)
    notify(
        session,
        users,
        kind,
        f"[{severity.label}] {organisation_name}: {incident.title}",
        f"{organisation_name} 的安全事件（{category.label}，{severity.label}）当前状态：{state.label}。"
        f"\n{incident.description}".rstrip(),
        f"/incidents/{incident.id}",
        settings,
    )


def get(session: Session, incident_id: int) -> Incident:
    found = session.get(Incident, incident_id, options=[selectinload(Incident.updates)])
    if found is None:
        raise NotFound(
            text(
                "no incident {incident_id}; list them with `pubdata incidents list`", incident_id=incident_id
            )
        )
    return found


def may_read(principal: Principal, incident: Incident) -> bool:
    org = principal.organisation
    return (
        principal.has_role(*READ_ALL_ROLES)
        or (org is not None and org.id == incident.organisation_id)
        or is_competent_for(principal, incident.organisation.division_code)
    )


def show(session: Session, principal: Principal, incident_id: int) -> Incident:
    """One incident the caller may read; one they may not answers like an unknown one."""
    incident = get(session, incident_id)
    if not may_read(principal, incident):
        raise NotFound(
            text(
                "no incident {incident_id}; list them with `pubdata incidents list`", incident_id=incident_id
            )
        )
    return incident


def visible(session: Session, principal: Principal, state: IncidentState | None = None) -> list[Incident]:
    """The incidents the caller may read, newest first."""
    query = select(Incident).options(selectinload(Incident.organisation), selectinload(Incident.updates))
    if state is not None:
        query = query.where(Incident.state == state.value)
    found = session.scalars(query.order_by(Incident.reported_at.desc(), Incident.id.desc()))
    return [i for i in found if may_read(principal, i)]


def move(
    session: Session,
    principal: Principal,
    incident_id: int,
    action: str,
    note: str,
    *,
    settings: Settings | None = None,
    now: dt.datetime | None = None,
) -> Incident:
    """Take one of `STEPS` with a mandatory note; refusals are audited."""
    now = (now or utcnow()).astimezone(dt.UTC)  # SQLite drops the zone: store UTC only
    step = STEPS[action]
    incident = show(session, principal, incident_id)
    target = f"incident:{incident.id}"
    seen_state, seen_version = IncidentState(incident.state), incident.lock_version
    doing = f"{action} incident {incident.id}"
    try:
        if step.by_competent:
            require_competent(principal, incident.organisation.division_code, doing)
        else:
            _require_staff(principal, incident.organisation_id, doing)
        if not note.strip():
            raise InputError(
                text(
                    "a note is needed to {action} incident {id}: say what was done",
                    action=action,
                    id=incident.id,
                )
            )
        if seen_state not in step.sources:
            raise RuleViolation(
                text(
                    "incident {incident_id} is {state} ({label}); {action} is possible only from {sources}",
                    incident_id=incident.id,
                    state=seen_state.value,
                    label=seen_state.label,
                    action=action,
                    sources=" or ".join(s.value for s in step.sources),
                ),
                req="REQ-28",
            )
    except (NotAuthorised, RuleViolation) as refusal:
        _refused(session, principal, f"incident.{action}", target, refusal)
        raise
    stamps: dict[IncidentState, dict[str, dt.datetime | None]] = {
        IncidentState.RESOLVED: {"resolved_at": now},
        IncidentState.CLOSED: {"closed_at": now},
        IncidentState.REMEDIATING: {"resolved_at": None},
    }
    moved = session.execute(
        update(Incident)
        .where(
            Incident.id == incident.id,
            Incident.state == seen_state.value,
            Incident.lock_version == seen_version,
        )
        .values(state=step.target.value, lock_version=seen_version + 1, **stamps.get(step.target, {}))
        .execution_options(synchronize_session=False)
    )
    if getattr(moved, "rowcount", 0) != 1:
        raise RuleViolation(
            text(
                "incident {incident_id} was already moved by someone else; reload it and try again",
                incident_id=incident.id,
            ),
            req="REQ-28",
        )
    session.add(
        IncidentUpdate(
            incident_id=incident.id,
            at=now,
            actor=principal.user.login,
            state=step.target.value,
            note=note.strip(),
        )
    )
    session.flush()
    session.refresh(incident)
    audit.record(
        session,
        principal.user.login,
        f"incident.{action}",
        target,
        from_state=seen_state.value,
        to_state=step.target.value,
        note=note.strip(),
        req="REQ-28",
    )
    org = incident.organisation
    told = (
        people(session, [org], Role.SECURITY_OFFICER)
        if step.by_competent
        else competent_people(session, org.division_code)
    )
    tell_about(session, told, incident, f"incident.{action}", org.name, settings)
    return incident
