"""The consumer's cart and request form (REQ-15): entries put in a draft from their page, the
terms of the request, and its submission.

Everything goes through `pubdata.workflow.requests` (and `request_drafts` for the terms of a draft),
so a refusal is the service's own sentence, shown next to the field it names.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pubdata.db.models import SharingRequest
from pubdata.errors import NotFound, PubdataError
from pubdata.gateway.identity import active_applications
from pubdata.gateway.roles import Principal, Role
from pubdata.web.error_text import say
from pubdata.web.path_ids import ItemId
from pubdata.web.templating import render
from pubdata.web.visitor import PageError, locale_of, require_roles, workspace_of
from pubdata.web.work import PrincipalDep, field_of, fresh, local_date, now_of, status_of
from pubdata.workflow import request_drafts, request_views, requests
from pubdata.workflow.refusals import PORTAL, Asker, refusals_audited
from pubdata.workspace import Workspace

router = APIRouter()
Text = Annotated[str, Form(max_length=2000)]
Short = Annotated[str, Form(max_length=64)]


def _form_of(request: SharingRequest | None) -> dict[str, str]:
    if request is None:
        return {}
    return {
        "application": request.application.code if request.application else "",
        "legal_basis": request.legal_basis,
        "purpose": request.purpose,
        "scenario": request.scenario,
        "delivery_mode": request.delivery_mode,
        "valid_from": f"{request.valid_from:%Y-%m-%d}" if request.valid_from else "",
        "valid_until": f"{request.valid_until:%Y-%m-%d}" if request.valid_until else "",
    }


def _cart(
    request: Request,
    principal: Principal,
    *,
    form: dict[str, str] | None = None,
    error: PubdataError | None = None,
) -> HTMLResponse:
    org = principal.organisation
    with workspace_of(request).sessions() as session:
        draft = request_drafts.current_draft(session, principal)
        items = [request_views.item_facts(i, now_of(request)) for i in draft.items] if draft else []
        applications = [(a.code, a.name) for a in active_applications(session, org)]
        shown = form if form is not None else _form_of(draft)
    context = {
        "draft_id": draft.id if draft else None,
        "items": items,
        "applications": applications,
        "form": shown,
        "modes": requests.DELIVERY_MODES,
        "error": say(error, locale_of(request)) if error else None,
        "error_field": field_of(error) if error else None,
    }
    return render(request, "cart.html", context, status_code=status_of(error) if error else 200)


@router.get("/cart", response_class=HTMLResponse)
def cart(request: Request, principal: PrincipalDep) -> HTMLResponse:
    require_roles(principal, (Role.CONSUMER,))
    return _cart(request, principal)


@router.post("/cart/items")
def add_to_cart(
    request: Request,
    principal: PrincipalDep,
    entry: Short,
    field: Annotated[list[str] | None, Form()] = None,
    region_prefix: Annotated[str, Form(max_length=12)] = "",
    region_field: Short = "",
    dispute_reason: Text = "",
) -> Response:
    require_roles(principal, (Role.CONSUMER,))
    workspace = workspace_of(request)
    try:
        with (
            _audited(workspace, principal, "request.add", "draft"),
            workspace.sessions() as session,
            session.begin(),
        ):
            draft = request_drafts.current_draft(session, principal)
            if draft is None:
                draft = requests.create_request(session, principal)
            requests.add_item(
                session, principal, draft.id, entry, field or [],
                region_prefix=region_prefix.strip() or None,
                region_field=region_field.strip() or None if region_prefix.strip() else None,
                dispute_reason=dispute_reason,
            )  # fmt: skip
    except PubdataError as refusal:
        return _cart(request, fresh(request), error=refusal)
    return RedirectResponse("/cart", status_code=303)


@router.post("/cart/submit")
def submit(
    request: Request,
    principal: PrincipalDep,
    legal_basis: Text = "",
    purpose: Text = "",
    scenario: Text = "",
    application: Short = "",
    delivery_mode: Short = "api",
    valid_from: Annotated[str, Form(max_length=10)] = "",
    valid_until: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    require_roles(principal, (Role.CONSUMER,))
    form = {
        "legal_basis": legal_basis, "purpose": purpose, "scenario": scenario, "application": application,
        "delivery_mode": delivery_mode, "valid_from": valid_from, "valid_until": valid_until,
    }  # fmt: skip
    workspace = workspace_of(request)
    try:
        with (
            _audited(workspace, principal, "request.submit", "draft"),
            workspace.sessions() as session,
            session.begin(),
        ):
            draft = request_drafts.current_draft(session, principal)
            if draft is None:
                draft = requests.create_request(session, principal)
            draft_id = draft.id
            request_drafts.set_terms(
                session, principal, draft_id, application=application or None, legal_basis=legal_basis,
                purpose=purpose, scenario=scenario, delivery_mode=delivery_mode,
                valid_from=local_date(valid_from), valid_until=local_date(valid_until, end=True),
            )  # fmt: skip
        with (
            _audited(workspace, principal, "request.submit", draft_id),
            workspace.sessions() as session,
            session.begin(),
        ):
            requests.submit(session, principal, draft_id, workspace.settings, now_of(request))
    except PubdataError as refusal:
        return _cart(request, fresh(request), form=form, error=refusal)
    return RedirectResponse(f"/requests/{draft_id}", status_code=303)


def _audited(
    workspace: Workspace, principal: Principal, action: str, draft: int | str
) -> AbstractContextManager[None]:
    """Bad input refused at the cart is audited once the step rolled back (REQ-40)."""
    return refusals_audited(workspace.sessions, Asker.of(principal, PORTAL), action, f"request:{draft}")


@router.post("/cart/items/{item_id}/remove")
def remove_from_cart(request: Request, principal: PrincipalDep, item_id: ItemId) -> Response:
    require_roles(principal, (Role.CONSUMER,))
    try:
        with workspace_of(request).sessions() as session, session.begin():
            draft = request_drafts.current_draft(session, principal)
            if draft is None:
                raise PageError(404, "not_found", str(item_id))
            request_drafts.remove_item(session, principal, draft.id, item_id)
    except NotFound:
        raise PageError(404, "not_found", str(item_id)) from None
    except PubdataError as refusal:
        return _cart(request, fresh(request), error=refusal)
    return RedirectResponse("/cart", status_code=303)
