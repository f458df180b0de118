"""The organisation's responsible persons on its page (REQ-25): the head and the security officer,
with who held each duty and when, and — for those `responsibility.require_may_change` lets — a form
to name a new holder or leave the duty vacant.

Platform administrators and competent-department staff may look at any organisation they may change
(``/org?responsible=USCC``); everyone else sees their own. The change is `responsibility.change_as`,
so the check, the audit event (or the audited refusal) and the notice are the service's own.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from pubdata.db.models import Organisation
from pubdata.errors import PubdataError
from pubdata.gateway.roles import NotAuthorised, Principal, Role
from pubdata.web.error_text import say
from pubdata.web.visitor import PageError, locale_of, workspace_of
from pubdata.web.work import PrincipalDep, fresh, now_of, status_of
from pubdata.workflow import responsibility
from pubdata.workflow.parties import is_competent_for
from pubdata.workflow.responsibility import CURRENT_COPY, Duty

router = APIRouter()


def may_change(principal: Principal, organisation: Organisation) -> bool:
    try:
        responsibility.require_may_change(principal, organisation)
    except NotAuthorised:
        return False
    return True


def _changeable(session: Session, principal: Principal) -> list[Organisation]:
    """The organisations this person may change the responsible persons of (none for most)."""
    if not principal.has_role(Role.PLATFORM_ADMIN, Role.COMPETENT_DEPARTMENT):
        return []
    everyone = session.scalars(select(Organisation).order_by(Organisation.name))
    admin = principal.has_role(Role.PLATFORM_ADMIN)
    return [o for o in everyone if admin or is_competent_for(principal, o.division_code)]


def context(session: Session, principal: Principal, uscc: str) -> dict[str, Any]:
    """What the page's section shows: the chosen organisation (own unless one it may change is
    asked for), each duty's current holder and history, and whether the form is offered."""
    choices = _changeable(session, principal)
    chosen = next((o for o in choices if o.uscc == uscc), None) if uscc else None
    shown = chosen or principal.organisation
    if shown is not None:
        shown = session.get(Organisation, shown.id)
    duties: list[dict[str, Any]] = []
    if shown is not None:
        rows = responsibility.history(session, shown)
        for duty, (name_column, contact_column) in CURRENT_COPY.items():
            duties.append(
                {
                    "duty": duty,
                    "name": getattr(shown, name_column),
                    "contact": getattr(shown, contact_column),
                    "history": [r for r in rows if r.duty == duty.value],
                }
            )
    return {
        "responsible_org": shown,
        "duties": duties,
        "may_change_responsible": shown is not None and may_change(principal, shown),
        "responsible_choices": [(o.uscc, o.name) for o in choices],
    }


@router.post("/org/responsible")
def change(
    request: Request,
    principal: PrincipalDep,
    organisation: Annotated[str, Form(max_length=18)],
    duty: Annotated[str, Form(max_length=24)],
    name: Annotated[str, Form(max_length=50)] = "",
    contact: Annotated[str, Form(max_length=100)] = "",
    vacant: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    from pubdata.web.pages_org import page  # the organisation page renders this section

    try:
        chosen = Duty(duty)
    except ValueError:
        raise PageError(404, "not_found", duty) from None
    workspace = workspace_of(request)
    try:
        with workspace.sessions() as session, session.begin():
            found = session.scalar(select(Organisation).where(Organisation.uscc == organisation))
            if found is None:
                raise PageError(404, "not_found", organisation)
            settings = workspace.settings.for_tenant(found.division_code)
            responsibility.change_as(
                session, principal, found, chosen,
                None if vacant else name, None if vacant else contact,
                settings=settings, now=now_of(request),
            )  # fmt: skip
    except (PubdataError, NotAuthorised) as refusal:
        return page(
            request,
            fresh(request),
            say(refusal, locale_of(request)),
            status_of(refusal),
            responsible=organisation,
        )
    return RedirectResponse(f"/org?responsible={organisation}#responsible", status_code=303)
