"""Separation of duties (四眼原则) in the sharing workflow: who may not decide, even holding the role.

The roles say who may check, decide and coordinate; they say nothing about whose request it is. A
data bureau is a competent department and may also ask for data as a consumer, so without this
module one bureau could ask for its providers' not-shared data, check the ask, coordinate it and
approve it, with nobody outside the bureau ever looking. Three rules close that:

* nobody takes a decision step on a request of their own organisation (`require_outsider`);
* a coordinated approval of not-shared (不予共享) data is countersigned (会签) by a second party —
  the provider's consent, or another competent-department person, as ``not_shared_consent`` says —
  and never by the person who coordinated it (`require_countersigner`);
* a user whose roles would let one person both ask and decide is warned about, or refused, as
  ``conflicting_roles`` says (`check_user_roles`).

Every refusal is a `SeparationOfDuties` or `ConflictingRoles`, audited where it happens so that
it survives the rollback it causes.
"""

from __future__ import annotations

from collections.abc import Collection
from itertools import combinations
from typing import Final

from sqlalchemy.orm import Session

from pubdata import audit
from pubdata.db.models import RequestItem, User
from pubdata.errors import PubdataError, RuleViolation
from pubdata.gateway.roles import NotAuthorised, Principal, Role
from pubdata.messages import Text, text
from pubdata.settings import Settings
from pubdata.workflow.parties import competent_people, people, require_competent, require_member
from pubdata.workflow.request_states import Party

#: The audit detail that marks a refusal as this module's.
RULE: Final = "separation-of-duties"
#: Parties whose steps decide on someone else's ask (the requester's own steps are not decisions).
DECIDING: Final = frozenset(
    {Party.PROVIDER, Party.COMPETENT, Party.PROVIDER_OR_COMPETENT, Party.COUNTERSIGNER}
)
#: Who may countersign a coordinated approval of not-shared data, by ``not_shared_consent``.
COUNTERSIGNERS: Final = ("provider", "second_competent")
#: Role pairs that let one person both ask for data (consumer) and decide on asks.
CONFLICTING_PAIRS: Final = frozenset(
    {
        frozenset({Role.CONSUMER, Role.COMPETENT_DEPARTMENT}),
        frozenset({Role.CONSUMER, Role.PROVIDER}),
    }
)
ROLE_POLICIES: Final = ("warn", "refuse")


class SeparationOfDuties(NotAuthorised):
    """One organisation would both ask and decide, or one person would decide twice."""

    rule: Final = RULE


class ConflictingRoles(RuleViolation):
    """A user's roles would let one person both ask for data and decide on requests."""

    rule: Final = RULE


def require_outsider(principal: Principal, item: RequestItem, party: Party, step: str) -> None:
    """Refuse a decision step by staff of the organisation that asked (whatever their roles)."""
    org = principal.organisation
    if party in DECIDING and org is not None and org.id == item.request.requester_org_id:
        raise SeparationOfDuties(
            text(
                "{login} may not {step}: the request comes from {organisation}, the caller's own "
                "organisation, and no one decides on a request of their own organisation",
                login=principal.user.login,
                step=step,
                organisation=org.name,
            )
        )


def countersigner_of(tenant: Settings) -> str:
    """``provider`` or ``second_competent``; a misspelt setting is an error, never a default."""
    chosen = tenant.not_shared_consent
    if chosen not in COUNTERSIGNERS:
        raise PubdataError(
            text("not_shared_consent is 'provider' or 'second_competent', not {value!r}", value=chosen)
        )
    return chosen


def require_countersigner(
    principal: Principal, item: RequestItem, coordinator: str, tenant: Settings, step: str
) -> None:
    """Refuse unless the caller is the countersigning party, and not the person who coordinated."""
    if countersigner_of(tenant) == "provider":
        require_member(principal, item.entry.provider, Role.PROVIDER, step)
    else:
        require_competent(principal, item.entry.provider.division_code, step)
    if principal.user.login == coordinator:
        raise SeparationOfDuties(
            text(
                "{login} may not {step}: {coordinator} approved it in coordination, "
                "and a countersignature needs a second person",
                login=principal.user.login,
                step=step,
                coordinator=coordinator,
            )
        )


def countersigners(session: Session, item: RequestItem, coordinator: str, tenant: Settings) -> list[User]:
    """The people to tell that a coordinated approval waits for them (never the coordinator, never
    staff of the organisation that asked)."""
    division = item.entry.provider.division_code
    if countersigner_of(tenant) == "provider":
        found = people(session, [item.entry.provider], Role.PROVIDER)
    else:
        found = competent_people(session, division, excluding=item.request.requester)
    return [u for u in found if u.login != coordinator and u.organisation_id != item.request.requester_org_id]


def role_conflicts(roles: Collection[Role]) -> list[tuple[Role, Role]]:
    """The pairs of `roles` that would let one person both ask and decide, in the roles' order.

    >>> role_conflicts([Role.CONSUMER, Role.COMPETENT_DEPARTMENT, Role.AUDITOR])
    [(<Role.COMPETENT_DEPARTMENT: 'competent_department'>, <Role.CONSUMER: 'consumer'>)]
    >>> role_conflicts([Role.PROVIDER, Role.SECURITY_OFFICER])
    []
    """
    held = sorted(set(roles), key=list(Role).index)
    return [(a, b) for a, b in combinations(held, 2) if frozenset({a, b}) in CONFLICTING_PAIRS]


def check_user_roles(
    session: Session, login: str, roles: Collection[Role], tenant: Settings, actor: str
) -> list[Text]:
    """Warnings about `roles` for a new user `login`; with ``conflicting_roles = "refuse"`` the
    first conflict is audited and raised instead."""
    if tenant.conflicting_roles not in ROLE_POLICIES:
        raise PubdataError(
            text("conflicting_roles is 'warn' or 'refuse', not {value!r}", value=tenant.conflicting_roles)
        )
    said = [
        text(
            "{login} would hold both {first} and {second}: one person could ask for data and decide on "
            "requests; give these roles to different people (separation of duties)",
            login=login,
            first=first.label,
            second=second.label,
        )
        for first, second in role_conflicts(roles)
    ]
    if said and tenant.conflicting_roles == "refuse":
        why = ConflictingRoles(said[0])
        audit.record_refusal(session, actor, "user.create", login, reason=str(why), rule=RULE)
        raise why
    return said
