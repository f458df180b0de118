"""Organisation settings: the organisation's applications and the signed-in person's API tokens.

Applications are registered through `identity.create_application` and tokens issued and revoked
through `identity.issue_token` / `revoke_token`, so the rules (REQ-15 purpose and owner, REQ-4
scopes that need a role, the longest lifetime) and the audit events are the gateway's own. A new
token is shown once, in the answer to the form that issued it (``Cache-Control: no-store``); only
its digest is kept. Platform admins see and register applications for every organisation; a token
is always its holder's own.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from pubdata.catalog.service import find_organisation
from pubdata.clock import now_on
from pubdata.db.models import ApiToken, Application, Organisation, User
from pubdata.errors import NotFound, PubdataError
from pubdata.gateway import identity
from pubdata.gateway.roles import SCOPE_NEEDS_ROLE, Principal, Role, Scope
from pubdata.web import pages_responsible
from pubdata.web.error_text import say
from pubdata.web.templating import render
from pubdata.web.visitor import APPLICATION_ROLES, PageError, locale_of, may_open, signed_in, workspace_of
from pubdata.workflow.refusals import PORTAL, Asker, refusals_audited

router = APIRouter()
PrincipalDep = Annotated[Principal, Depends(signed_in)]
Text = Annotated[str, Form(max_length=200)]
LongText = Annotated[str, Form(max_length=2000)]


def _offered_scopes(principal: Principal) -> list[Scope]:
    """The scopes this person may put on a token (the service checks again)."""
    return [s for s in Scope if not (needed := SCOPE_NEEDS_ROLE.get(s)) or principal.has_role(*needed)]


def page(
    request: Request,
    principal: Principal,
    error: str | None = None,
    status: int = 200,
    responsible: str = "",
) -> HTMLResponse:
    admin = principal.has_role(Role.PLATFORM_ADMIN)
    org = principal.organisation
    now = now_on(request.app.state)
    with workspace_of(request).sessions() as session:
        query = select(Application).options(selectinload(Application.organisation)).order_by(Application.code)
        if not admin:
            query = query.where(Application.organisation_id == (org.id if org else -1))
        applications = list(session.scalars(query))
        user = session.scalar(select(User).where(User.login == principal.user.login))
        tokens = list(
            session.scalars(
                select(ApiToken).where(ApiToken.user_id == (user.id if user else -1)).order_by(ApiToken.id)
            )
        )
        organisations = (
            [(o.uscc, o.name) for o in session.scalars(select(Organisation).order_by(Organisation.name))]
            if admin
            else []
        )
        persons = pages_responsible.context(session, principal, responsible)
        session.expunge_all()
    context = {
        "organisation": org,
        "admin": admin,
        "applications": applications,
        "organisations": organisations,
        "may_register": may_open(principal, APPLICATION_ROLES) and (admin or org is not None),
        "tokens": [(t, _token_state(t, now)) for t in tokens],
        "scopes": _offered_scopes(principal),
        "error": error,
        **persons,
    }
    return render(request, "org.html", context, status_code=status)


def _token_state(token: ApiToken, now: dt.datetime) -> str:
    if token.revoked_at is not None:
        return "revoked"
    expires = token.expires_at if token.expires_at.tzinfo else token.expires_at.replace(tzinfo=dt.UTC)
    return "expired" if expires <= now else "active"


@router.get("/org", response_class=HTMLResponse)
def organisation_page(request: Request, principal: PrincipalDep, responsible: str = "") -> HTMLResponse:
    return page(request, principal, responsible=responsible[:18])


@router.post("/org/applications", response_class=HTMLResponse)
def register_application(
    request: Request,
    principal: PrincipalDep,
    code: Annotated[str, Form(max_length=64)],
    name: Text,
    purpose: LongText,
    system_owner: Annotated[str, Form(max_length=100)],
    organisation: Text = "",
) -> Response:
    if not may_open(principal, APPLICATION_ROLES):
        raise PageError(403, "forbidden", "、".join(r.label for r in APPLICATION_ROLES))
    admin = principal.has_role(Role.PLATFORM_ADMIN)
    own = principal.organisation
    if not admin and own is None:
        raise PageError(403, "forbidden")
    owner = organisation.strip() if admin and organisation.strip() else (own.uscc if own else "")
    try:
        with workspace_of(request).sessions() as session, session.begin():
            find_organisation(session, owner)
            identity.create_application(
                session,
                code,
                name=name.strip(),
                organisation=owner,
                purpose=purpose,
                system_owner=system_owner,
                actor=principal.user.login,
            )
    except PubdataError as refusal:
        return page(request, principal, say(refusal, locale_of(request)), status=_status(refusal))
    return RedirectResponse("/org", status_code=303)


@router.post("/org/tokens", response_class=HTMLResponse)
def issue(
    request: Request,
    principal: PrincipalDep,
    days: Annotated[int, Form(ge=1, le=3650)],
    scope: Annotated[list[str] | None, Form()] = None,
    name: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    workspace = workspace_of(request)
    try:
        scopes = [Scope(s) for s in scope or []]
    except ValueError:
        return page(request, principal, "unknown scope", status=400)
    org = principal.organisation
    settings = workspace.settings.for_tenant(org.division_code if org else "")
    asker = Asker.of(principal, PORTAL)
    try:
        with (
            refusals_audited(workspace.sessions, asker, "token.issue", principal.user.login),
            workspace.sessions() as session,
            session.begin(),
        ):
            issued = identity.issue_token(
                session, principal.user.login, scopes, days, principal.user.login, settings, name=name.strip()
            )
            shown = {
                "token": issued.token,
                "id": issued.row.public_id,
                "scopes": list(issued.row.scopes),
                "expires_at": issued.row.expires_at,
            }
    except PubdataError as refusal:
        return page(request, principal, say(refusal, locale_of(request)), status=_status(refusal))
    answer = render(request, "org_token.html", {"issued": shown})
    answer.headers["Cache-Control"] = "no-store"
    return answer


@router.post("/org/tokens/{public_id}/revoke")
def revoke(request: Request, principal: PrincipalDep, public_id: str) -> Response:
    with workspace_of(request).sessions() as session, session.begin():
        row = session.scalar(
            select(ApiToken)
            .join(User)
            .where(ApiToken.public_id == public_id, User.login == principal.user.login)
        )
        if row is None:  # someone else's token is as good as no token
            raise PageError(404, "not_found", public_id)
        try:
            identity.revoke_token(session, public_id, principal.user.login)
        except NotFound:
            raise PageError(404, "not_found", public_id) from None
    return RedirectResponse("/org", status_code=303)


def _status(error: PubdataError) -> int:
    from pubdata.api.app import ERROR_STATUS  # the API's mapping, so both surfaces agree

    return next(s for cls, s, _ in ERROR_STATUS if isinstance(error, cls))
