"""Sharing-request routes (REQ-15, 16, 17): the consumer's cart, the parties' inboxes, and the steps.

Thin over `pubdata.workflow`: every route needs the ``workflow`` scope, and the service checks the
role and the organisation of each step. A request the caller is no party to answers 404, like one
that does not exist, so its number tells an outsider nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from pubdata.api.deps import MAX_ID, NowDep, WorkspaceDep
from pubdata.api.query import PrincipalDep
from pubdata.api.schemas import ErrorOut
from pubdata.errors import NotFound
from pubdata.gateway.roles import Principal, Scope
from pubdata.messages import text
from pubdata.workflow import request_views as views
from pubdata.workflow import requests
from pubdata.workflow.decisions import Decision, act
from pubdata.workflow.refusals import API, Asker, denials_audited, refusals_audited
from pubdata.workflow.request_states import Action
from pubdata.workspace import Workspace

router = APIRouter(prefix="/api/v1/requests", tags=["requests"])
_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "Missing or invalid input; the message names it."},
    403: {
        "model": ErrorOut,
        "description": "Wrong role or organisation for this step, or no workflow scope.",
    },
    404: {"model": ErrorOut, "description": "No such request, or the caller is no party to it."},
    409: {"model": ErrorOut, "description": "A rule refuses the step, or someone else decided first."},
}
RequestId = Annotated[int, Path(description="Request number.", ge=1, le=MAX_ID)]


class ItemIn(BaseModel):
    """One entry asked for."""

    entry: str = Field(description="Catalogue entry code.")
    fields: list[str] = Field(description="Fields wanted; each must be a field of the entry.")
    region_prefix: str | None = Field(default=None, description="Only rows of this division (e.g. 3304).")
    region_field: str | None = Field(default=None, description="The field holding the rows' division code.")
    dispute_reason: str | None = Field(
        default=None, description="Why a not-shared (不予共享) entry is needed: it then goes to coordination."
    )


class RequestIn(BaseModel):
    """A sharing request; incomplete drafts are accepted, `submit` checks everything."""

    application: str | None = Field(
        default=None, description="Code of the requester's consuming application."
    )
    legal_basis: str = Field(default="", description="The law or duty the use rests on (法律依据/履职依据).")
    purpose: str = Field(
        default="", description="What the data is used for; the grant is made for this purpose."
    )
    scenario: str = Field(default="", description="The scenario of use (应用场景).")
    delivery_mode: str = Field(default="api", description="api, bulk or subscription.")
    valid_from: dt.datetime | None = Field(default=None, description="Start of the period of use.")
    valid_until: dt.datetime | None = Field(default=None, description="End of the period of use.")
    items: list[ItemIn] = Field(default_factory=list, description="The entries asked for.")
    submit: bool = Field(
        default=False, description="Submit at once (the draft stays if the submission is refused)."
    )


class DecisionIn(BaseModel):
    """What comes with a step; which parts apply depends on the action."""

    reason: str | None = Field(
        default=None, description="Mandatory for return, refuse, dispute, uphold, revoke."
    )
    fields: list[str] | None = Field(
        default=None, description="Approval: the fields shared, a subset of those asked."
    )
    region_prefix: str | None = Field(default=None, description="Approval: a region inside the one asked.")
    region_field: str | None = Field(
        default=None, description="Approval: the region's field, when none was asked."
    )
    valid_until: dt.datetime | None = Field(
        default=None,
        description="Approval: an earlier end; renew: the new end asked; approve-renewal: an earlier one.",
    )
    deid: dict[str, Any] | None = Field(
        default=None,
        description='Approval: de-identification per field, e.g. {"id_number": "mask_id_number"}.',
    )


def _caller(principal: Principal) -> Principal:
    principal.require(scope=Scope.WORKFLOW)
    return principal


def _asker(principal: Principal) -> Asker:
    return Asker.of(principal, API)


def _show(workspace: Workspace, principal: Principal, request_id: int, now: dt.datetime) -> dict[str, Any]:
    with (
        denials_audited(workspace.sessions, _asker(principal), "request", request_id),
        workspace.sessions() as session,
    ):
        request = views.visible_request(session, principal, request_id)
        return {
            **views.request_facts(request, now),
            "history": [views.event_facts(e) for e in views.history(session, request)],
        }


@router.post("", responses=_ERRORS, summary="Create a request (and submit it)")
def create(body: RequestIn, workspace: WorkspaceDep, principal: PrincipalDep, now: NowDep) -> dict[str, Any]:
    """A draft with its items, in one transaction; with ``submit`` it is then submitted."""
    caller = _caller(principal)
    terms = body.model_dump(exclude={"items", "submit"})
    with (
        refusals_audited(workspace.sessions, _asker(caller), "request.create", "request:new"),
        workspace.sessions() as session,
        session.begin(),
    ):
        request = requests.create_request(session, caller, **terms)
        for item in body.items:
            requests.add_item(
                session, caller, request.id, item.entry, item.fields, region_prefix=item.region_prefix,
                region_field=item.region_field, dispute_reason=item.dispute_reason,
            )  # fmt: skip
        request_id = request.id
    if body.submit:
        _submit(workspace, caller, request_id, now)
    return _show(workspace, caller, request_id, now)


@router.post("/{request_id}/items", responses=_ERRORS, summary="Add an entry to a draft")
def add(
    request_id: RequestId, body: ItemIn, workspace: WorkspaceDep, principal: PrincipalDep, now: NowDep
) -> dict[str, Any]:
    caller = _caller(principal)
    target = f"request:{request_id}"
    with (
        refusals_audited(workspace.sessions, _asker(caller), "request.add", target),
        workspace.sessions() as session,
        session.begin(),
    ):
        requests.add_item(
            session, caller, request_id, body.entry, body.fields, region_prefix=body.region_prefix,
            region_field=body.region_field, dispute_reason=body.dispute_reason,
        )  # fmt: skip
    return _show(workspace, caller, request_id, now)


@router.post("/{request_id}/submit", responses=_ERRORS, summary="Submit a draft")
def submit(
    request_id: RequestId, workspace: WorkspaceDep, principal: PrincipalDep, now: NowDep
) -> dict[str, Any]:
    """All or nothing: every item goes to the competent department's check, or none does."""
    caller = _caller(principal)
    _submit(workspace, caller, request_id, now)
    return _show(workspace, caller, request_id, now)


def _submit(workspace: Workspace, caller: Principal, request_id: int, now: dt.datetime) -> None:
    target = f"request:{request_id}"
    with (
        refusals_audited(workspace.sessions, _asker(caller), "request.submit", target),
        workspace.sessions() as session,
        session.begin(),
    ):
        requests.submit(session, caller, request_id, workspace.settings, now)


@router.get("", responses=_ERRORS, summary="My organisation's requests")
def mine(workspace: WorkspaceDep, principal: PrincipalDep, now: NowDep) -> list[dict[str, Any]]:
    caller = _caller(principal)
    with workspace.sessions() as session:
        return [views.request_facts(r, now) for r in views.list_mine(session, caller)]


@router.get("/waiting", responses=_ERRORS, summary="Items waiting for me")
def waiting(
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    now: NowDep,
    view: Annotated[
        str, Query(description="provider, competent (my department's checks and coordination) or overdue.")
    ] = "provider",
) -> list[dict[str, Any]]:
    """Earliest deadline first, with the working days left (negative: overdue)."""
    caller = _caller(principal)
    with workspace.sessions() as session:
        return [views.item_facts(i, now) for i in views.waiting(session, caller, view, now)]


@router.get("/{request_id}", responses=_ERRORS, summary="One request with its history")
def show(
    request_id: RequestId, workspace: WorkspaceDep, principal: PrincipalDep, now: NowDep
) -> dict[str, Any]:
    """The request, its items with their state and deadline, and the audit events of them all."""
    return _show(workspace, _caller(principal), request_id, now)


@router.post("/{request_id}/items/{item_id}/{action}", responses=_ERRORS, summary="Take a step on an item")
def step(
    request_id: RequestId,
    item_id: Annotated[int, Path(description="Item number.", ge=1, le=MAX_ID)],
    action: Annotated[
        str,
        Path(
            description="check, return, approve, refuse, dispute, coordinate-approve, coordinate-uphold, "
            "withdraw, revoke, renew, approve-renewal, refuse-renewal."
        ),
    ],
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    now: NowDep,
    body: DecisionIn | None = None,
) -> dict[str, Any]:
    caller = _caller(principal)
    chosen = Action.parse(action)
    if chosen in (Action.SUBMIT, Action.ESCALATE, Action.EXPIRE):
        raise NotFound(f"no step {action!r} on an item; submit the request, the platform does the rest")
    asker = _asker(caller)
    with denials_audited(workspace.sessions, asker, "request", request_id), workspace.sessions() as session:
        request = views.visible_request(session, caller, request_id)
        if item_id not in {i.id for i in request.items}:
            raise NotFound(
                text("request {request_id} has no item {item_id}", request_id=request_id, item_id=item_id)
            )
    given = body or DecisionIn()
    decision = Decision(**given.model_dump())
    with refusals_audited(workspace.sessions, asker, f"request.{chosen}", f"request-item:{item_id}"):
        act(workspace.sessions, caller, item_id, chosen, decision, workspace.settings, now)
    return _show(workspace, caller, request_id, now)
