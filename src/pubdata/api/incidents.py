"""Incident routes (REQ-28): thin, typed; who may do what is decided in `pubdata.workflow.incidents`.

Every route needs a token with the ``workflow`` scope. An incident the caller may not read answers
404, like one that does not exist.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from pubdata.api.deps import MAX_ID, WorkspaceDep
from pubdata.api.query import PrincipalDep
from pubdata.api.schemas import ErrorOut, Moment
from pubdata.db.models import Incident, aware
from pubdata.gateway.roles import Principal, Scope
from pubdata.workflow import incidents
from pubdata.workflow.incidents import IncidentCategory, IncidentState, Severity
from pubdata.workflow.refusals import API, Asker, denials_audited
from pubdata.workspace import Workspace

router = APIRouter(prefix="/api/v1", tags=["incidents"])
IdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="Incident number.")]
_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "Bad input: unknown entry, a future time, a missing note."},
    401: {"model": ErrorOut, "description": "Missing or bad token."},
    403: {"model": ErrorOut, "description": "Scope or role missing."},
    404: {"model": ErrorOut, "description": "No such incident, or not one the caller may read."},
    409: {"model": ErrorOut, "description": "Not possible from the incident's state, or moved meanwhile."},
}


class Action(StrEnum):
    UPDATE = "update"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    CLOSE = "close"


class UpdateOut(BaseModel):
    at: Moment
    actor: str
    state: IncidentState
    note: str


class IncidentOut(BaseModel):
    id: int
    organisation: str
    title: str
    description: str
    category: IncidentCategory = Field(description="data_leak, tampering, unauthorised_access, loss, …")
    severity: Severity = Field(description="especially_major, major, larger or general.")
    state: IncidentState
    entry_codes: list[str]
    occurred_at: Moment
    reported_by: str
    reported_at: Moment
    notified_at: Moment | None = Field(description="When the competent department was last told.")
    resolved_at: Moment | None
    closed_at: Moment | None
    updates: list[UpdateOut] = Field(description="Every step with its note, oldest first.")

    @classmethod
    def from_row(cls, row: Incident) -> IncidentOut:
        def maybe(moment: dt.datetime | None) -> dt.datetime | None:
            return aware(moment) if moment is not None else None

        return cls(
            id=row.id,
            organisation=row.organisation.name,
            title=row.title,
            description=row.description,
            category=IncidentCategory(row.category),
            severity=Severity(row.severity),
            state=IncidentState(row.state),
            entry_codes=list(row.entry_codes),
            occurred_at=aware(row.occurred_at),
            reported_by=row.reported_by,
            reported_at=aware(row.reported_at),
            notified_at=maybe(row.notified_at),
            resolved_at=maybe(row.resolved_at),
            closed_at=maybe(row.closed_at),
            updates=[
                UpdateOut(at=aware(u.at), actor=u.actor, state=IncidentState(u.state), note=u.note)
                for u in row.updates
            ],
        )


class IncidentIn(BaseModel):
    title: str = Field(max_length=200, description="What happened, in a few words.")
    description: str = Field(default="", max_length=20_000)
    category: IncidentCategory
    severity: Severity
    occurred_at: dt.datetime = Field(description="When it happened, with a time zone; not in the future.")
    entry_codes: list[str] = Field(default_factory=list, description="Affected catalogue entries.")


class NoteIn(BaseModel):
    note: str = Field(min_length=1, max_length=20_000, description="What was done or found.")


def _denials(workspace: Workspace, principal: Principal, incident_id: int) -> AbstractContextManager[None]:
    """An incident the caller may not read answers 404; the ask is audited (REQ-40)."""
    return denials_audited(workspace.sessions, Asker.of(principal, API), "incident", incident_id)


@router.get("/incidents", response_model=list[IncidentOut], responses=_ERRORS, summary="Incidents")
def list_incidents(
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    state: Annotated[IncidentState | None, Query(description="Only incidents in this state.")] = None,
) -> list[IncidentOut]:
    """The incidents the caller may read, newest first."""
    principal.require(scope=Scope.WORKFLOW)
    with workspace.sessions() as session:
        return [IncidentOut.from_row(i) for i in incidents.visible(session, principal, state)]


@router.post("/incidents", response_model=IncidentOut, status_code=201, responses=_ERRORS, summary="Report")
def post_incident(body: IncidentIn, workspace: WorkspaceDep, principal: PrincipalDep) -> IncidentOut:
    """Record an incident of the caller's organisation; the competent department is told at once."""
    principal.require(scope=Scope.WORKFLOW)
    org = principal.organisation
    settings = workspace.settings.for_tenant(org.division_code) if org else workspace.settings.default
    with workspace.sessions() as session, session.begin():
        incident = incidents.report(
            session,
            principal,
            title=body.title,
            description=body.description,
            category=body.category,
            severity=body.severity,
            occurred_at=body.occurred_at,
            entry_codes=body.entry_codes,
            settings=settings,
        )
        return IncidentOut.from_row(incidents.get(session, incident.id))


@router.get("/incidents/{incident_id}", response_model=IncidentOut, responses=_ERRORS, summary="One incident")
def get_incident(incident_id: IdPath, workspace: WorkspaceDep, principal: PrincipalDep) -> IncidentOut:
    principal.require(scope=Scope.WORKFLOW)
    with _denials(workspace, principal, incident_id), workspace.sessions() as session:
        return IncidentOut.from_row(incidents.show(session, principal, incident_id))


@router.post(
    "/incidents/{incident_id}/{action}", response_model=IncidentOut, responses=_ERRORS, summary="Take a step"
)
def post_step(
    incident_id: IdPath, action: Action, body: NoteIn, workspace: WorkspaceDep, principal: PrincipalDep
) -> IncidentOut:
    """``update`` / ``resolve`` / ``reopen`` by the organisation's staff, ``close`` by the department."""
    principal.require(scope=Scope.WORKFLOW)
    with _denials(workspace, principal, incident_id), workspace.sessions() as session, session.begin():
        incident = incidents.move(session, principal, incident_id, action.value, body.note)
        return IncidentOut.from_row(incident)
