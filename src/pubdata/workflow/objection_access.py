"""Who may see an objection (REQ-12), and the one answer everyone else gets.

An objection names records, often by identity number, so it is private to its parties: the raiser,
the provider's staff and the competent departments over the provider. To anyone else it does not
exist — reading it and trying to move it answer the same `NotFound` as an id that was never issued,
with nothing of the objection (not its entry code) in the sentence. Were a move to answer "you may
not accept objections on gat_population" where the read answers "no objection 7", walking the ids
would list which objections exist and on which entries.
"""

from __future__ import annotations

from pubdata.db.models import Objection
from pubdata.errors import NotFound
from pubdata.gateway.roles import Principal, Role
from pubdata.messages import text
from pubdata.workflow.parties import is_competent_for


def is_provider(principal: Principal, objection: Objection) -> bool:
    """Whether the caller is staff of the provider of the objection's entry."""
    org = principal.organisation
    return principal.has_role(Role.PROVIDER) and org is not None and org.id == objection.entry.provider_id


def is_competent(principal: Principal, objection: Objection) -> bool:
    """Whether the caller is staff of a competent department over the entry's provider."""
    return is_competent_for(principal, objection.entry.provider.division_code)


def may_see(principal: Principal, objection: Objection) -> bool:
    return (
        objection.raised_by == principal.user.login
        or is_provider(principal, objection)
        or is_competent(principal, objection)
    )


def unknown_objection(objection_id: int) -> NotFound:
    """The refusal for an objection the caller may not see, word for word that of a missing id."""
    return NotFound(text("no objection {objection_id}", objection_id=objection_id))
