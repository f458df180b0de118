"""One objection (REQ-12): its records, deadline and history, and the moves its viewer may make —
the competent department accepts or rejects and archives, the provider upholds with a reason or
names the version that corrected the records.

Only the objection's parties see it (`objection_views.show_objection`); anyone else gets the 404
page. Every move is the service's (`objections.accept`, `reject`, `uphold`, `correct`, `archive`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pubdata.db.models import Objection
from pubdata.errors import NotFound, PubdataError
from pubdata.gateway.roles import NotAuthorised, Principal
from pubdata.web.error_text import say
from pubdata.web.path_ids import ObjectionId
from pubdata.web.templating import render
from pubdata.web.visitor import PageError, locale_of, workspace_of
from pubdata.web.work import PrincipalDep, fresh, now_of, status_of
from pubdata.workflow import objection_access, objection_views, objections
from pubdata.workflow.objection_states import TRANSITIONS, Actor, ObjectionState
from pubdata.workflow.refusals import PORTAL, Asker, denials_audited

router = APIRouter()
MOVES = ("accept", "reject", "uphold", "correct", "archive")


def _moves(principal: Principal, objection: Objection) -> list[str]:
    """The moves this person may make now (the service checks again)."""
    state = ObjectionState(objection.state)
    as_provider = objection_access.is_provider(principal, objection)
    as_competent = objection_access.is_competent(principal, objection)
    return [
        t.action
        for t in TRANSITIONS
        if t.source is state
        and t.action in MOVES
        and ((t.actor is Actor.PROVIDER and as_provider) or (t.actor is Actor.COMPETENT and as_competent))
    ]


def _denials(request: Request, principal: Principal, objection_id: int) -> AbstractContextManager[None]:
    """An objection the visitor is no party to is the 404 page; the ask is audited (REQ-40)."""
    return denials_audited(
        workspace_of(request).sessions, Asker.of(principal, PORTAL), "objection", objection_id
    )


def _page(
    request: Request, principal: Principal, objection_id: int, error: str | None = None, status: int = 200
) -> HTMLResponse:
    now = now_of(request)
    with workspace_of(request).sessions() as session:
        try:
            with _denials(request, principal, objection_id):
                found = objection_views.show_objection(session, principal, objection_id)
        except NotFound:
            raise PageError(404, "not_found", str(objection_id)) from None
        context = {
            "objection": objection_views.objection_facts(found, now),
            "entry_name": found.entry.name,
            "moves": _moves(principal, found),
            "history": [
                objection_views.event_facts(e) for e in objection_views.history(session, objection_id)
            ],
            "error": error,
        }
    return render(request, "objection.html", context, status_code=status)


@router.get("/objections/{objection_id}", response_class=HTMLResponse)
def objection_page(request: Request, principal: PrincipalDep, objection_id: ObjectionId) -> HTMLResponse:
    return _page(request, principal, objection_id)


@router.post("/objections/{objection_id}/{move}")
def make_move(
    request: Request,
    principal: PrincipalDep,
    objection_id: ObjectionId,
    move: str,
    reason: Annotated[str, Form(max_length=2000)] = "",
    version: Annotated[int | None, Form(ge=1)] = None,
) -> Response:
    if move not in MOVES:
        raise PageError(404, "not_found", move)
    workspace = workspace_of(request)
    now = now_of(request)
    try:  # an objection the visitor is no party to is the 404 page, the ask audited (REQ-40)
        with _denials(request, principal, objection_id), workspace.sessions() as session:
            objection_views.show_objection(session, principal, objection_id)
    except NotFound:
        raise PageError(404, "not_found", str(objection_id)) from None
    settings = workspace.settings
    try:
        if move == "correct":
            objections.correct(workspace, principal, objection_id, version=version, now=now)
        else:
            with workspace.sessions() as session, session.begin():
                if move == "accept":
                    objections.accept(session, principal, objection_id, now=now, settings=settings)
                elif move == "archive":
                    objections.archive(session, principal, objection_id, now=now, settings=settings)
                else:
                    decide = objections.reject if move == "reject" else objections.uphold
                    decide(session, principal, objection_id, reason, now=now, settings=settings)
    except (PubdataError, NotAuthorised) as refusal:
        return _page(
            request, fresh(request), objection_id, say(refusal, locale_of(request)), status_of(refusal)
        )
    return RedirectResponse(f"/objections/{objection_id}", status_code=303)
