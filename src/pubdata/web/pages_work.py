"""What waits for the signed-in person's organisation: the provider's decisions, the competent
department's checks and coordination, the overdue list with its escalations, the objections to
accept or verify, and open incidents.

The lists are the services' own views (`request_views.waiting`, `objection_views.list_objections`,
`incidents.visible`), so a page shows exactly what the API's inboxes show; each line links to the
page where the step is taken.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from pubdata.gateway.roles import Principal, Role
from pubdata.web.templating import render
from pubdata.web.visitor import WORK_ROLES, require_roles, workspace_of
from pubdata.web.work import PrincipalDep, now_of
from pubdata.workflow import incidents, objection_views, sla
from pubdata.workflow import request_views as views
from pubdata.workflow.incidents import IncidentState, Severity

router = APIRouter()
OPEN_INCIDENTS = (IncidentState.REPORTED, IncidentState.REMEDIATING)


def _overdue(
    session: Session, principal: Principal, now: dt.datetime, competent: bool
) -> list[dict[str, Any]]:
    """The provider's own late items; a competent department's: every late item in its divisions."""
    items = (
        sla.overdue_in_my_divisions(session, principal, now)
        if competent
        else views.waiting(session, principal, "overdue", now)
    )
    return [views.item_facts(i, now) for i in items]


@router.get("/work", response_class=HTMLResponse)
def work(request: Request, principal: PrincipalDep) -> HTMLResponse:
    require_roles(principal, WORK_ROLES)
    now = now_of(request)
    competent = principal.has_role(Role.COMPETENT_DEPARTMENT)
    with workspace_of(request).sessions() as session:
        lists = {
            "provider": [views.item_facts(i, now) for i in views.waiting(session, principal, "provider", now)]
            if principal.has_role(Role.PROVIDER)
            else [],
            "competent": [
                views.item_facts(i, now) for i in views.waiting(session, principal, "competent", now)
            ]
            if competent
            else [],
            "overdue": _overdue(session, principal, now, competent),
        }
        objections = [
            objection_views.objection_facts(o, now)
            for o in objection_views.list_objections(session, principal, view="waiting", now=now)
        ]
        open_incidents = (
            [
                {
                    "id": i.id,
                    "title": i.title,
                    "severity": Severity(i.severity).label,
                    "state": IncidentState(i.state).label,
                    "organisation": i.organisation.name,
                }
                for s in OPEN_INCIDENTS
                for i in incidents.visible(session, principal, s)
            ]
            if competent
            else []
        )
    context = {
        "lists": lists,
        "objections": objections,
        "incidents": open_incidents,
        "competent": competent,
        "provider": principal.has_role(Role.PROVIDER),
    }
    return render(request, "work.html", context)
