"""Who takes part in a workflow step: the competent department over a division, an organisation's
people in a role, and the check that the caller is one of them.

Every workflow module asks these questions, so they are answered once. A competent department
covers the divisions inside its own (the province's data bureau covers every city and county; a
city's covers its counties); the one nearest to the division is asked first.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from pubdata.db.models import Organisation, User, UserRole
from pubdata.divisions import divisions, is_within
from pubdata.gateway.roles import NotAuthorised, Principal, Role
from pubdata.messages import text


def _prefix(division_code: str) -> str:
    found = divisions().find(division_code)
    return found.prefix if found is not None else division_code.rstrip("0")


def competent_departments(session: Session, division_code: str) -> list[Organisation]:
    """Competent departments whose division holds `division_code`, nearest (longest prefix) first."""
    found = session.scalars(select(Organisation).where(Organisation.is_competent_department.is_(True)))
    covering = [o for o in found if is_within(division_code, _prefix(o.division_code))]
    return sorted(covering, key=lambda o: (-len(_prefix(o.division_code)), o.id))


def people(session: Session, organisations: list[Organisation], role: Role) -> list[User]:
    """Active users of `organisations` holding `role`, in a stable order."""
    if not organisations:
        return []
    query = (
        select(User)
        .join(UserRole)
        .where(
            User.organisation_id.in_([o.id for o in organisations]),
            User.active.is_(True),
            UserRole.role == role,
        )
        .options(selectinload(User.role_rows))
        .order_by(User.id)
    )
    return list(session.scalars(query).unique())


def competent_people(
    session: Session, division_code: str, *, excluding: Organisation | None = None
) -> list[User]:
    """The competent-department staff to tell about a step in `division_code` (nearest who has any).

    `excluding` passes over a department that may not take the step (the one that asked: see
    `pubdata.workflow.duties`), so the step goes to the next department up instead.
    """
    for org in competent_departments(session, division_code):
        if excluding is not None and org.id == excluding.id:
            continue
        found = people(session, [org], Role.COMPETENT_DEPARTMENT)
        if found:
            return found
    return []


def is_competent_for(principal: Principal, division_code: str) -> bool:
    """Whether the caller is competent-department staff of a department covering `division_code`."""
    org = principal.organisation
    return (
        principal.has_role(Role.COMPETENT_DEPARTMENT)
        and org is not None
        and org.is_competent_department
        and is_within(division_code, _prefix(org.division_code))
    )


def require_member(principal: Principal, organisation: Organisation, role: Role, step: str) -> None:
    """Refuse unless the caller holds `role` in `organisation` itself (not merely some organisation)."""
    org = principal.organisation
    if not principal.has_role(role) or org is None or org.id != organisation.id:
        raise NotAuthorised(
            text(
                "{login} may not {step}: only {role} staff of {organisation} may",
                login=principal.user.login,
                step=step,
                role=role.label,
                organisation=organisation.name,
            )
        )


def require_competent(principal: Principal, division_code: str, step: str) -> None:
    """Refuse unless the caller is competent-department staff over `division_code`."""
    if not is_competent_for(principal, division_code):
        raise NotAuthorised(
            text(
                "{login} may not {step}: only staff of a competent department "
                "(公共数据主管部门) covering {division} may",
                login=principal.user.login,
                step=step,
                division=division_code,
            )
        )
