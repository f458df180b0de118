"""The audit page for security officers and auditors: recent events, filters, chain verification.

"Who accessed data about this person or organisation" (REQ-41) takes the identity number or USCC
in a POST body only: it never reaches a URL, an access log or the session, the answer does not
repeat it, and the look-up is audited as ``audit.who_accessed`` with the number's keyed hash.

Verification runs `pubdata.audit.verify` over the whole log (with the workspace's public key when it
has one, so checkpoint signatures are checked too) and shows its summary.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from pubdata import audit
from pubdata.audit.reports import in_family
from pubdata.db.models import AuditEvent
from pubdata.errors import InputError
from pubdata.gateway.roles import Principal
from pubdata.web.templating import render
from pubdata.web.visitor import AUDIT_ROLES, require_roles, signed_in, workspace_of

router = APIRouter()
PrincipalDep = Annotated[Principal, Depends(signed_in)]
RECENT = 100


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    principal: PrincipalDep,
    action: Annotated[str, Query(max_length=64)] = "",
    actor: Annotated[str, Query(max_length=100)] = "",
    outcome: Annotated[str, Query(max_length=16)] = "",
) -> HTMLResponse:
    require_roles(principal, AUDIT_ROLES)
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(RECENT)
    if action:
        query = query.where(in_family(action.strip()))
    if actor:
        query = query.where(AuditEvent.actor == actor.strip().lower())
    if outcome:
        query = query.where(AuditEvent.outcome == outcome.strip())
    with workspace_of(request).sessions() as session:
        events = [
            (e.id, e.at, e.actor, e.action, e.target, e.outcome, e.detail) for e in session.scalars(query)
        ]
    chosen = {"action": action, "actor": actor, "outcome": outcome}
    return render(request, "audit.html", {"events": events, "chosen": chosen})


@router.post("/audit/verify", response_class=HTMLResponse)
def verify(request: Request, principal: PrincipalDep) -> HTMLResponse:
    require_roles(principal, AUDIT_ROLES)
    workspace = workspace_of(request)
    with workspace.sessions() as session:
        try:
            key: str | None = audit.public_key_pem(workspace.home)
        except (OSError, ValueError):
            # An unreadable or damaged key file: the chain is still checked, and the page says plainly
            # that signatures were not, rather than calling an unsigned check a verified chain.
            key = None
        report = audit.verify(session, key)
    return render(request, "audit_verify.html", {"report": report})


@router.post("/audit/who-accessed", response_class=HTMLResponse)
def who_accessed(
    request: Request,
    principal: PrincipalDep,
    kind: Annotated[str, Form(max_length=16)],
    number: Annotated[str, Form(max_length=64)],
) -> HTMLResponse:
    require_roles(principal, AUDIT_ROLES)
    workspace = workspace_of(request)
    events: list[tuple[object, ...]] = []
    problem = None
    try:
        if kind not in ("id_number", "uscc") or not number.strip():
            raise InputError("give an identity number or a unified social credit code")
        with workspace.sessions() as session, session.begin():
            found = audit.who_accessed(session, workspace.home, **{kind: number})
            events = [(e.id, e.at, e.actor, e.action, e.target, e.outcome, e.detail) for e in found]
            digest = audit.subject_hash(workspace.home, number)
            audit.record(
                session,
                principal.user.login,
                "audit.who_accessed",
                kind,
                subject_hash=digest,
                events=len(events),
            )
    except InputError:
        problem = "invalid"
    context = {"accesses": events, "problem": problem, "kind": kind}
    name = "audit_who.html" if request.headers.get("hx-request") else "audit_who_page.html"
    return render(request, name, context)
