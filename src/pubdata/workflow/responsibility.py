"""Who answers for an organisation's data (REQ-25): its head and its security officer, with history.

`ResponsiblePerson` rows are the record (the current holder of a duty is the row with no
``ended_at``); `Organisation.head_name` and friends stay as the current copy that listings and the
publish rule (`pubdata.catalog.rules.check_responsible_persons`) read. Every write goes through
`record_holder`, so the copy and the history never disagree.

Who may change them: a platform administrator, or competent-department staff covering the
organisation's division. Not the organisation itself: these names unblock publishing, so they are
filed with the department that supervises the provider, which is also who is told of every change.
A duty may be left vacant (the previous holder's row ends and no new one starts); publishing stays
blocked until someone holds it again.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from pubdata import audit
from pubdata.db.models import Organisation, ResponsiblePerson, utcnow
from pubdata.errors import InputError, RuleViolation
from pubdata.gateway.roles import NotAuthorised, Principal, Role
from pubdata.messages import text
from pubdata.settings import Settings
from pubdata.vocabulary import Labelled
from pubdata.workflow.notify import notify
from pubdata.workflow.parties import competent_people, is_competent_for


class Duty(Labelled):
    """The two persons every provider names (REQ-25)."""

    HEAD = "head", "第一责任人"
    SECURITY_OFFICER = "security_officer", "数据安全负责人"


#: Duty → the `Organisation` columns holding its current name and contact.
CURRENT_COPY: dict[Duty, tuple[str, str]] = {
    Duty.HEAD: ("head_name", "head_contact"),
    Duty.SECURITY_OFFICER: ("security_officer_name", "security_officer_contact"),
}


def _clean(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def history(session: Session, organisation: Organisation) -> list[ResponsiblePerson]:
    """Every holder of either duty, in the order they took it within each duty (the current one last).

    By row id, not ``started_at``: a change may be recorded with an earlier effective time.
    """
    query = (
        select(ResponsiblePerson)
        .where(ResponsiblePerson.organisation_id == organisation.id)
        .order_by(ResponsiblePerson.duty, ResponsiblePerson.id)
    )
    return list(session.scalars(query))


def start_history(session: Session, organisation: Organisation, actor: str, now: dt.datetime) -> None:
    """The first rows of a newly registered organisation: whoever its registration names."""
    now = now.astimezone(dt.UTC)
    for duty, (name_column, contact_column) in CURRENT_COPY.items():
        name = _clean(getattr(organisation, name_column))
        if name is not None:
            session.add(
                ResponsiblePerson(
                    organisation_id=organisation.id,
                    duty=duty.value,
                    name=name,
                    contact=_clean(getattr(organisation, contact_column)),
                    started_at=now,
                    changed_by=actor,
                )
            )
    session.flush()


def record_holder(
    session: Session,
    organisation: Organisation,
    duty: Duty,
    name: str | None,
    contact: str | None,
    actor: str,
    now: dt.datetime,
) -> bool:
    """End the current holder's row and start the new one (none for a vacancy); False if unchanged.

    The current copy on `Organisation` moves by a conditional UPDATE on the values this transaction
    saw, so of two people renaming the same duty at once exactly one wins and the other is told.
    """
    name, contact = _clean(name), _clean(contact)
    now = now.astimezone(dt.UTC)  # SQLite keeps the wall time and drops the zone: store UTC only
    if name is None and contact is not None:
        raise InputError(
            text("a contact without a name for the {duty}: give the person's name too", duty=duty.label)
        )
    name_column, contact_column = CURRENT_COPY[duty]
    seen_name, seen_contact = getattr(organisation, name_column), getattr(organisation, contact_column)
    if (seen_name, seen_contact) == (name, contact):
        return False
    moved = session.execute(
        update(Organisation)
        .where(
            Organisation.id == organisation.id,
            getattr(Organisation, name_column).is_not_distinct_from(seen_name),
            getattr(Organisation, contact_column).is_not_distinct_from(seen_contact),
        )
        .values({name_column: name, contact_column: contact}),
        execution_options={"synchronize_session": False},
    )
    if getattr(moved, "rowcount", 0) != 1:
        raise RuleViolation(
            text(
                "the {duty} of {organisation} was changed by someone else meanwhile; "
                "reload the organisation and try again",
                duty=duty.label,
                organisation=organisation.name,
            ),
            req="REQ-25",
        )
    set_committed_value(organisation, name_column, name)
    set_committed_value(organisation, contact_column, contact)
    session.execute(
        update(ResponsiblePerson)
        .where(
            ResponsiblePerson.organisation_id == organisation.id,
            ResponsiblePerson.duty == duty.value,
            ResponsiblePerson.ended_at.is_(None),
        )
        .values(ended_at=now),
        execution_options={"synchronize_session": False},
    )
    if name is not None:
        session.add(
            ResponsiblePerson(
                organisation_id=organisation.id,
                duty=duty.value,
                name=name,
                contact=contact,
                started_at=now,
                changed_by=actor,
            )
        )
    session.flush()
    for held in list(session.identity_map.values()):
        if isinstance(held, ResponsiblePerson):  # an ended row read earlier is stale now
            session.expire(held)
    return True


def change_holder(
    session: Session,
    organisation: Organisation,
    duty: Duty,
    name: str | None,
    contact: str | None,
    actor: str,
    *,
    settings: Settings | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """`record_holder`, audited as ``org.responsible`` and told to the competent department."""
    now = now or utcnow()
    previous = getattr(organisation, CURRENT_COPY[duty][0])
    if not record_holder(session, organisation, duty, name, contact, actor, now):
        return False
    current = getattr(organisation, CURRENT_COPY[duty][0])
    audit.record(
        session,
        actor,
        "org.responsible",
        organisation.uscc,
        duty=duty.value,
        previous=previous,
        name=current,
        vacant=current is None,
    )
    who = current or "空缺 (vacant)"
    notify(
        session,
        competent_people(session, organisation.division_code),
        "org.responsible",
        f"{organisation.name} {duty.label}: {who}",
        f"{organisation.name} 的{duty.label}由 {previous or '空缺'} 变更为 {who}（操作人 {actor}）。"
        + ("在补齐之前，该单位不能发布目录（REQ-25）。" if current is None else ""),
        f"/org?responsible={organisation.uscc}",
        settings,
    )
    return True


def require_may_change(principal: Principal, organisation: Organisation) -> None:
    """Refuse unless the caller is a platform administrator or competent over the organisation."""
    if principal.has_role(Role.PLATFORM_ADMIN) or is_competent_for(principal, organisation.division_code):
        return
    raise NotAuthorised(
        text(
            "{login} may not change the responsible persons of {organisation}: only a platform "
            "administrator or a competent department (公共数据主管部门) covering it may",
            login=principal.user.login,
            organisation=organisation.name,
        )
    )


def change_as(
    session: Session,
    principal: Principal,
    organisation: Organisation,
    duty: Duty,
    name: str | None,
    contact: str | None,
    *,
    settings: Settings | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """`change_holder` by a signed-in caller, after checking they may (a refusal is audited)."""
    try:
        require_may_change(principal, organisation)
    except NotAuthorised as refusal:
        audit.record_refusal(
            session, principal.user.login, "org.responsible", organisation.uscc, reason=str(refusal)
        )
        raise
    return change_holder(
        session, organisation, duty, name, contact, principal.user.login, settings=settings, now=now
    )
