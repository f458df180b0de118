"""Objection routes (REQ-12, REQ-13): raise, read and move objections to records of an entry.

Thin: every rule is in `pubdata.workflow.objections`. Each route needs a token with the
``workflow`` scope; who may make which move is the workflow's role check (403 otherwise), and an
objection the caller is no party to is 404 on every route, as if it did not exist. A move
made by someone else first answers 409. A correction names a dataset version already ingested
after the flagging (upload the corrected file through the ingest path first).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from pubdata.api.deps import MAX_ID, NowDep, WorkspaceDep
from pubdata.api.query import PrincipalDep
from pubdata.api.schemas import ErrorOut
from pubdata.db.models import Objection
from pubdata.gateway.roles import Principal, Scope
from pubdata.workflow import objection_views as views
from pubdata.workflow import objections
from pubdata.workflow.refusals import API, Asker, denials_audited
from pubdata.workspace import Workspace

router = APIRouter(prefix="/api/v1/objections", tags=["objections"])
_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "Bad input: unknown key field, missing key, no reason."},
    401: {"model": ErrorOut, "description": "Missing, unknown, expired or revoked token."},
    403: {
        "model": ErrorOut,
        "description": "No workflow scope, not the party the step needs, no verified identity.",
    },
    404: {
        "model": ErrorOut,
        "description": "No such objection, or none of the caller's (the same answer).",
    },
    409: {"model": ErrorOut, "description": "The objection's state does not allow it, or someone was first."},
    429: {"model": ErrorOut, "description": "Raise: the caller or the entry reached its objection limit."},
}
IdPath = Annotated[int, Path(description="Objection number.", ge=1, le=MAX_ID)]


class ObjectionIn(BaseModel):
    """Records of an entry that the caller says are wrong."""

    entry: str = Field(max_length=64, description="Catalogue entry code.")
    records: list[dict[str, str | int]] = Field(
        min_length=1,
        max_length=1000,
        description="Each record as `{key field: value}`, every key field given.",
    )
    description: str = Field(max_length=5000, description="What is wrong with the records (mandatory).")
    kind: str = Field(default="consumer", description="`consumer` or `data_subject`.")


class ReasonIn(BaseModel):
    reason: str = Field(max_length=5000, description="Why; the raiser reads it (mandatory).")


class CorrectedIn(BaseModel):
    version: int = Field(
        ge=0, description="The dataset version, ingested after the flagging, that corrects them."
    )


class StateOut(BaseModel):
    value: str
    label: str


class ObjectionOut(BaseModel):
    """An objection as its parties see it."""

    id: int
    entry: str
    state: StateOut
    raised_by: str
    raiser_kind: str
    records: list[dict[str, Any]] = Field(description="The records objected to, by key fields.")
    description: str
    due_at: str | None = Field(description="Deadline of the current step (REQ-13), if it has one.")
    due_provisional: bool = Field(
        description="The deadline was counted on estimated holidays: its year has no official calendar yet."
    )
    working_days_left: int | None
    overdue: bool
    escalated_at: str | None
    handled_by: str | None
    reason: str | None
    corrected_version: int | None
    created_at: str | None
    updated_at: str | None


class EventOut(BaseModel):
    at: str | None
    actor: str
    action: str
    outcome: str
    detail: dict[str, Any]


class ObjectionDetail(ObjectionOut):
    history: list[EventOut] = Field(description="Every move and refusal, from the audit log.")


def _caller(principal: Principal) -> Principal:
    principal.require(scope=Scope.WORKFLOW)
    return principal


def _party(workspace: Workspace, principal: Principal, objection_id: int) -> Principal:
    """The caller, once the objection is one they are party to: another's answers 404 like one
    never issued, before any move is tried, and the ask is audited as access.denied (REQ-40)."""
    caller = _caller(principal)
    with (
        denials_audited(workspace.sessions, Asker.of(caller, API), "objection", objection_id),
        workspace.sessions() as session,
    ):
        views.show_objection(session, caller, objection_id)
    return caller


def _out(objection: Objection, now: dt.datetime) -> ObjectionOut:
    return ObjectionOut(**views.objection_facts(objection, now))


def _detail(workspace: Workspace, objection_id: int, now: dt.datetime) -> ObjectionDetail:
    with workspace.sessions() as session:
        objection = objections.get_objection(session, objection_id)
        events = [EventOut(**views.event_facts(e)) for e in views.history(session, objection_id)]
        return ObjectionDetail(**views.objection_facts(objection, now), history=events)


@router.post(
    "", response_model=ObjectionOut, status_code=201, responses=_ERRORS, summary="Raise an objection"
)
def raise_objection(
    body: ObjectionIn, workspace: WorkspaceDep, principal: PrincipalDep, now: NowDep
) -> ObjectionOut:
    caller = _caller(principal)
    with workspace.sessions() as session, session.begin():
        found = objections.raise_objection(
            session,
            caller,
            body.entry,
            body.records,
            body.description,
            kind=body.kind,
            now=now,
            settings=workspace.settings,
        )
        return _out(found, now)


@router.get("", response_model=list[ObjectionOut], responses=_ERRORS, summary="List objections")
def list_objections(
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    now: NowDep,
    view: Annotated[str, Query(description="all, mine, waiting (for the caller) or overdue.")] = "all",
    entry: Annotated[str | None, Query(max_length=64, description="Only this entry's.")] = None,
) -> list[ObjectionOut]:
    caller = _caller(principal)
    with workspace.sessions() as session:
        found = views.list_objections(session, caller, view=view, entry=entry, now=now)
        return [_out(o, now) for o in found]


@router.get("/{objection_id}", response_model=ObjectionDetail, responses=_ERRORS, summary="Show an objection")
def show_objection(
    objection_id: IdPath, workspace: WorkspaceDep, principal: PrincipalDep, now: NowDep
) -> ObjectionDetail:
    _party(workspace, principal, objection_id)
    return _detail(workspace, objection_id, now)


@router.post("/{objection_id}/accept", response_model=ObjectionDetail, responses=_ERRORS, summary="Accept")
def accept(
    objection_id: IdPath, workspace: WorkspaceDep, principal: PrincipalDep, now: NowDep
) -> ObjectionDetail:
    """Accept and flag at once: the records are disputed in every answer from now on."""
    caller = _party(workspace, principal, objection_id)
    with workspace.sessions() as session, session.begin():
        objections.accept(session, caller, objection_id, now=now, settings=workspace.settings)
    return _detail(workspace, objection_id, now)


@router.post("/{objection_id}/reject", response_model=ObjectionDetail, responses=_ERRORS, summary="Reject")
def reject(
    objection_id: IdPath, body: ReasonIn, workspace: WorkspaceDep, principal: PrincipalDep, now: NowDep
) -> ObjectionDetail:
    caller = _party(workspace, principal, objection_id)
    with workspace.sessions() as session, session.begin():
        objections.reject(session, caller, objection_id, body.reason, now=now, settings=workspace.settings)
    return _detail(workspace, objection_id, now)


@router.post(
    "/{objection_id}/verify-corrected", response_model=ObjectionDetail, responses=_ERRORS, summary="Corrected"
)
def verify_corrected(
    objection_id: IdPath, body: CorrectedIn, workspace: WorkspaceDep, principal: PrincipalDep, now: NowDep
) -> ObjectionDetail:
    """The provider corrected the records in `version`; they are unflagged."""
    caller = _party(workspace, principal, objection_id)
    objections.correct(workspace, caller, objection_id, version=body.version, now=now)
    return _detail(workspace, objection_id, now)


@router.post(
    "/{objection_id}/verify-upheld", response_model=ObjectionDetail, responses=_ERRORS, summary="Upheld"
)
def verify_upheld(
    objection_id: IdPath, body: ReasonIn, workspace: WorkspaceDep, principal: PrincipalDep, now: NowDep
) -> ObjectionDetail:
    """The provider found the records right; they are unflagged."""
    caller = _party(workspace, principal, objection_id)
    with workspace.sessions() as session, session.begin():
        objections.uphold(session, caller, objection_id, body.reason, now=now, settings=workspace.settings)
    return _detail(workspace, objection_id, now)


@router.post("/{objection_id}/archive", response_model=ObjectionDetail, responses=_ERRORS, summary="Archive")
def archive(
    objection_id: IdPath, workspace: WorkspaceDep, principal: PrincipalDep, now: NowDep
) -> ObjectionDetail:
    caller = _party(workspace, principal, objection_id)
    with workspace.sessions() as session, session.begin():
        objections.archive(session, caller, objection_id, now=now, settings=workspace.settings)
    return _detail(workspace, objection_id, now)
