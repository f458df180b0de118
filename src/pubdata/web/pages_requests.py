"""My requests and grants, one request with its history, and the steps on its items (REQ-16, 17).

A request is shown only to its parties (`request_views.visible_request`): another organisation's
number answers the 404 page, not its data. Each item offers the steps its viewer may take in its
state (`work.my_actions`), and every step is `decisions.act` — the service decides, narrows,
grants and audits; a refusal is its sentence, shown at the item.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from pubdata.db.models import SharingRequest
from pubdata.errors import NotFound, PubdataError
from pubdata.gateway.deid import DEID_FUNCTIONS, default_deid
from pubdata.gateway.deid_floor import meets_floor
from pubdata.gateway.roles import NotAuthorised, Principal
from pubdata.web.error_text import say
from pubdata.web.path_ids import ItemId, RequestId
from pubdata.web.templating import render
from pubdata.web.visitor import N_, PageError, locale_of, workspace_of
from pubdata.web.work import PrincipalDep, fresh, local_date, my_actions, now_of, status_of
from pubdata.workflow import request_views as views
from pubdata.workflow.decisions import Decision, act
from pubdata.workflow.refusals import PORTAL, Asker, denials_audited, refusals_audited
from pubdata.workflow.request_states import Action

router = APIRouter()
#: Steps people take on an item from its page; the platform's own are not offered.
STEPS = frozenset(Action) - {Action.SUBMIT, Action.ESCALATE, Action.EXPIRE}
#: The button of each step, through the catalogues (the services' labels are Chinese only).
STEP_LABELS: dict[str, str] = {
    Action.CHECK.value: N_("Pass the check"),
    Action.RETURN.value: N_("Return for changes"),
    Action.APPROVE.value: N_("Approve"),
    Action.REFUSE.value: N_("Refuse"),
    Action.DISPUTE.value: N_("Dispute the refusal"),
    Action.COORDINATE_APPROVE.value: N_("Coordinate: approve"),
    Action.COORDINATE_UPHOLD.value: N_("Coordinate: uphold the refusal"),
    Action.WITHDRAW.value: N_("Withdraw"),
    Action.REVOKE.value: N_("Revoke the grant"),
    Action.RENEW.value: N_("Ask to renew"),
    Action.APPROVE_RENEWAL.value: N_("Approve the renewal"),
    Action.REFUSE_RENEWAL.value: N_("Refuse the renewal"),
    Action.CONSENT.value: N_("Countersign: consent"),
    Action.WITHHOLD_CONSENT.value: N_("Countersign: withhold consent"),
}


@router.get("/requests", response_class=HTMLResponse)
def my_requests(request: Request, principal: PrincipalDep) -> HTMLResponse:
    now = now_of(request)
    with workspace_of(request).sessions() as session:
        shown = [
            views.request_facts(r, now) for r in views.list_mine(session, principal) if r.state != "draft"
        ]
    return render(request, "requests.html", {"requests": shown})


def _deid_choices(entry: Any) -> dict[str, list[tuple[str, str]]]:
    """Per field, the gateway's functions meant for its kind of personal information and not weaker
    than its floor (REQ-27): the service refuses the others anyway, so the form does not offer them."""
    return {
        f.name: [
            (name, fn.label)
            for name, fn in DEID_FUNCTIONS.items()
            if f.pii_kind in fn.pii_kinds and meets_floor(name, f.level, f.pii_kind)
        ]
        for f in entry.fields
    }


def _detail(
    request: Request, principal: Principal, request_id: int, problem: tuple[int, str] | None = None
) -> HTMLResponse:
    now = now_of(request)
    with workspace_of(request).sessions() as session:
        found = _visible(request, principal, request_id, session)
        facts = views.request_facts(found, now)
        extra = {
            item.id: {
                "actions": [a.value for a in my_actions(principal, item) if a in STEPS],
                "all_fields": [f.name for f in item.entry.fields],
                "deid": _deid_choices(item.entry),
                "default_deid": {f.name: default_deid(f.level, f.pii_kind) for f in item.entry.fields},
            }
            for item in found.items
        }
        events = [views.event_facts(e) for e in views.history(session, found)]
    context = {
        "request": facts,
        "extra": extra,
        "history": events,
        "problem": problem,
        "step_labels": STEP_LABELS,
    }
    return render(request, "request.html", context, status_code=_status(problem))


def _visible(request: Request, principal: Principal, request_id: int, session: Session) -> SharingRequest:
    """The request if the visitor is a party to it, else the 404 page (the ask audited)."""
    asker = Asker.of(principal, PORTAL)
    try:
        with denials_audited(workspace_of(request).sessions, asker, "request", request_id):
            return views.visible_request(session, principal, request_id)
    except NotFound:
        raise PageError(404, "not_found", str(request_id)) from None


def _status(problem: tuple[int, str] | None) -> int:
    return 200 if problem is None else 409


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_page(request: Request, principal: PrincipalDep, request_id: RequestId) -> HTMLResponse:
    return _detail(request, principal, request_id)


@router.post("/requests/{request_id}/items/{item_id}/{action}")
def step(
    request: Request,
    principal: PrincipalDep,
    request_id: RequestId,
    item_id: ItemId,
    action: str,
    reason: Annotated[str, Form(max_length=2000)] = "",
    field: Annotated[list[str] | None, Form()] = None,
    region_prefix: Annotated[str, Form(max_length=12)] = "",
    valid_until: Annotated[str, Form(max_length=10)] = "",
    deid: Annotated[list[str] | None, Form()] = None,
) -> Response:
    try:
        chosen = Action.parse(action)
    except ValueError:
        raise PageError(404, "not_found", action) from None
    if chosen not in STEPS:
        raise PageError(404, "not_found", action)
    workspace = workspace_of(request)
    with workspace.sessions() as session:
        found = _visible(request, principal, request_id, session)
        if item_id not in {i.id for i in found.items}:
            raise PageError(404, "not_found", str(item_id))
    chosen_deid = dict(pair.split(":", 1) for pair in deid or [] if ":" in pair and not pair.endswith(":"))
    narrowing = chosen in (Action.APPROVE, Action.COORDINATE_APPROVE)
    decision = Decision(
        reason=reason or None,
        fields=field if narrowing and field else None,
        region_prefix=region_prefix.strip() or None if narrowing else None,
        valid_until=local_date(valid_until, end=True),
        deid=chosen_deid if narrowing and chosen_deid else None,
    )
    asker = Asker.of(principal, PORTAL)
    try:
        with refusals_audited(workspace.sessions, asker, f"request.{chosen}", f"request-item:{item_id}"):
            act(workspace.sessions, principal, item_id, chosen, decision, workspace.settings, now_of(request))
    except (PubdataError, NotAuthorised) as refusal:
        answer = _detail(request, fresh(request), request_id, (item_id, say(refusal, locale_of(request))))
        answer.status_code = status_of(refusal)
        return answer
    return RedirectResponse(f"/requests/{request_id}#item-{item_id}", status_code=303)
