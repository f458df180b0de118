"""Security incidents (REQ-28): the list its viewer may read, the report form for an organisation's
own staff, and one incident with its steps and the moves its viewer may take, each with a note.

Reading, reporting and every move are `pubdata.workflow.incidents`' own (`visible`, `show`,
`report`, `move`), so who may see or do what, the audit events and the notices are the service's;
a refusal is its sentence, shown on the page.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pubdata.db.models import Incident, aware
from pubdata.errors import InputError, NotFound, PubdataError
from pubdata.gateway.roles import NotAuthorised, Principal
from pubdata.web.error_text import say
from pubdata.web.path_ids import IncidentId
from pubdata.web.templating import render
from pubdata.web.visitor import N_, PageError, locale_of, workspace_of
from pubdata.web.work import PrincipalDep, fresh, now_of, status_of
from pubdata.workflow import incidents
from pubdata.workflow.incidents import STAFF_ROLES, STEPS, IncidentCategory, IncidentState, Severity
from pubdata.workflow.parties import is_competent_for
from pubdata.workflow.refusals import PORTAL, Asker, denials_audited
from pubdata.workflow.working_days import LOCAL_TZ

router = APIRouter()
Text = Annotated[str, Form(max_length=2000)]
#: The button of each move, through the catalogues.
MOVE_LABELS: dict[str, str] = {
    "update": N_("Record progress"),
    "resolve": N_("Resolved"),
    "reopen": N_("Reopen"),
    "close": N_("Close"),
}


def may_report(principal: Principal) -> bool:
    return principal.organisation is not None and principal.has_role(*STAFF_ROLES)


def my_moves(principal: Principal, incident: Incident) -> list[str]:
    """The moves this person may take now (the service checks again)."""
    org = principal.organisation
    staff = org is not None and org.id == incident.organisation_id and principal.has_role(*STAFF_ROLES)
    competent = is_competent_for(principal, incident.organisation.division_code)
    state = IncidentState(incident.state)
    return [
        name
        for name, step in STEPS.items()
        if state in step.sources and (competent if step.by_competent else staff)
    ]


def _facts(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "title": incident.title,
        "description": incident.description,
        "organisation": incident.organisation.name,
        "category": IncidentCategory(incident.category).label,
        "severity": Severity(incident.severity).label,
        "state": IncidentState(incident.state),
        "entries": list(incident.entry_codes),
        "occurred_at": aware(incident.occurred_at).astimezone(LOCAL_TZ),
        "reported_at": aware(incident.reported_at).astimezone(LOCAL_TZ),
        "reported_by": incident.reported_by,
    }


def _list(
    request: Request,
    principal: Principal,
    error: PubdataError | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    with workspace_of(request).sessions() as session:
        shown = [_facts(i) for i in incidents.visible(session, principal)]
    context = {
        "incidents": shown,
        "may_report": may_report(principal),
        "categories": list(IncidentCategory),
        "severities": list(Severity),
        "form": form or {},
        "error": say(error, locale_of(request)) if error else None,
        "error_field": getattr(error, "column", None) if error else None,
    }
    return render(request, "incidents.html", context, status_code=status_of(error) if error else 200)


@router.get("/incidents", response_class=HTMLResponse)
def incident_list(request: Request, principal: PrincipalDep) -> HTMLResponse:
    return _list(request, principal)


def _occurred(text: str) -> dt.datetime:
    """A ``datetime-local`` form value, read as Zhejiang time."""
    try:
        return dt.datetime.fromisoformat(text.strip()).replace(tzinfo=LOCAL_TZ)
    except ValueError:
        raise InputError("give when the incident happened as a date and time", column="occurred_at") from None


@router.post("/incidents")
def report(
    request: Request,
    principal: PrincipalDep,
    title: Annotated[str, Form(max_length=200)] = "",
    category: Annotated[str, Form(max_length=32)] = "",
    severity: Annotated[str, Form(max_length=16)] = "",
    occurred_at: Annotated[str, Form(max_length=32)] = "",
    description: Text = "",
    entries: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    form = {"title": title, "category": category, "severity": severity, "occurred_at": occurred_at,
            "description": description, "entries": entries}  # fmt: skip
    workspace = workspace_of(request)
    try:
        try:
            chosen_category, chosen_severity = IncidentCategory(category), Severity(severity)
        except ValueError:
            raise InputError("choose the incident's category and severity", column="category") from None
        org = principal.organisation
        with workspace.sessions() as session, session.begin():
            made = incidents.report(
                session, principal, title=title, category=chosen_category, severity=chosen_severity,
                occurred_at=_occurred(occurred_at), description=description,
                entry_codes=[c.strip() for c in entries.replace("，", ",").split(",") if c.strip()],
                settings=workspace.settings.for_tenant(org.division_code) if org else None,
                now=now_of(request),
            )  # fmt: skip
            made_id = made.id
    except (PubdataError, NotAuthorised) as refusal:
        answer = _list(request, fresh(request), form=form, error=_as_error(refusal))
        answer.status_code = status_of(refusal)
        return answer
    return RedirectResponse(f"/incidents/{made_id}", status_code=303)


def _as_error(refusal: Exception) -> PubdataError:
    return refusal if isinstance(refusal, PubdataError) else PubdataError(str(refusal))


def _denials(request: Request, principal: Principal, incident_id: int) -> AbstractContextManager[None]:
    """An incident the visitor may not read is the 404 page; the ask is audited (REQ-40)."""
    return denials_audited(
        workspace_of(request).sessions, Asker.of(principal, PORTAL), "incident", incident_id
    )


def _detail(
    request: Request, principal: Principal, incident_id: int, problem: str | None = None
) -> HTMLResponse:
    with workspace_of(request).sessions() as session:
        try:
            with _denials(request, principal, incident_id):
                found = incidents.show(session, principal, incident_id)
        except NotFound:
            raise PageError(404, "not_found", str(incident_id)) from None
        context = {
            "incident": _facts(found),
            "updates": [
                {
                    "at": aware(u.at).astimezone(LOCAL_TZ),
                    "actor": u.actor,
                    "state": IncidentState(u.state).label,
                    "note": u.note,
                }
                for u in found.updates
            ],
            "moves": my_moves(principal, found),
            "move_labels": MOVE_LABELS,
            "problem": problem,
        }
    return render(request, "incident.html", context)


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(request: Request, principal: PrincipalDep, incident_id: IncidentId) -> HTMLResponse:
    return _detail(request, principal, incident_id)


@router.post("/incidents/{incident_id}/{action}")
def take_move(
    request: Request, principal: PrincipalDep, incident_id: IncidentId, action: str, note: Text = ""
) -> Response:
    if action not in STEPS:
        raise PageError(404, "not_found", action)
    workspace = workspace_of(request)
    try:
        with _denials(request, principal, incident_id), workspace.sessions() as session, session.begin():
            found = incidents.show(session, principal, incident_id)
            settings = workspace.settings.for_tenant(found.organisation.division_code)
            incidents.move(
                session, principal, incident_id, action, note, settings=settings, now=now_of(request)
            )
    except NotFound:
        raise PageError(404, "not_found", str(incident_id)) from None
    except (PubdataError, NotAuthorised) as refusal:
        answer = _detail(request, fresh(request), incident_id, say(refusal, locale_of(request)))
        answer.status_code = status_of(refusal)
        return answer
    return RedirectResponse(f"/incidents/{incident_id}", status_code=303)
