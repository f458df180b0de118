"""Responsible persons' routes (REQ-25): their history to catalogue readers, changes to the
competent department (the rules are in `pubdata.workflow.responsibility`).

The current names are public in ``GET /api/organisations``; who held a duty before, and their
contacts, need a token with ``catalog:read``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from pubdata.api.deps import WorkspaceDep
from pubdata.api.query import PrincipalDep
from pubdata.api.schemas import ErrorOut, Moment
from pubdata.catalog.service import find_organisation
from pubdata.db.models import Organisation, ResponsiblePerson, aware
from pubdata.gateway.roles import Scope
from pubdata.workflow.responsibility import Duty, change_as, history

router = APIRouter(prefix="/api/v1", tags=["responsible persons"])
RefPath = Annotated[str, Path(description="Organisation name, short name or USCC.", max_length=200)]
_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "Missing or bad token."},
    403: {"model": ErrorOut, "description": "Scope or role missing."},
    404: {"model": ErrorOut, "description": "Unknown organisation."},
    409: {"model": ErrorOut, "description": "Changed by someone else meanwhile."},
}


class HolderOut(BaseModel):
    duty: Duty = Field(description="`head` (第一责任人) or `security_officer` (数据安全负责人).")
    name: str
    contact: str | None
    started_at: Moment
    ended_at: Moment | None = Field(description="None while the person holds the duty.")
    changed_by: str = Field(description="Who recorded the change.")

    @classmethod
    def from_row(cls, row: ResponsiblePerson) -> HolderOut:
        ended = aware(row.ended_at) if row.ended_at is not None else None
        return cls(
            duty=Duty(row.duty),
            name=row.name,
            contact=row.contact,
            started_at=aware(row.started_at),
            ended_at=ended,
            changed_by=row.changed_by,
        )


class ResponsibleOut(BaseModel):
    organisation: str
    uscc: str
    head: str | None = Field(description="Current head; None while vacant (publishing is blocked).")
    security_officer: str | None = Field(description="Current security officer; None while vacant.")
    history: list[HolderOut] = Field(description="Every holder, by duty, in the order they took it.")


class HolderIn(BaseModel):
    duty: Duty
    name: str | None = Field(default=None, max_length=50, description="Empty or null leaves it vacant.")
    contact: str | None = Field(default=None, max_length=100)


def responsible_out(session: Session, org: Organisation) -> ResponsibleOut:
    return ResponsibleOut(
        organisation=org.name,
        uscc=org.uscc,
        head=org.head_name,
        security_officer=org.security_officer_name,
        history=[HolderOut.from_row(r) for r in history(session, org)],
    )


@router.get(
    "/organisations/{ref}/responsible",
    response_model=ResponsibleOut,
    responses=_ERRORS,
    summary="Responsible persons and their history",
)
def get_responsible(ref: RefPath, workspace: WorkspaceDep, principal: PrincipalDep) -> ResponsibleOut:
    principal.require(scope=Scope.CATALOG_READ)
    with workspace.sessions() as session:
        return responsible_out(session, find_organisation(session, ref))


@router.put(
    "/organisations/{ref}/responsible",
    response_model=ResponsibleOut,
    responses=_ERRORS,
    summary="Name (or vacate) a head or security officer",
)
def put_responsible(
    ref: RefPath, body: HolderIn, workspace: WorkspaceDep, principal: PrincipalDep
) -> ResponsibleOut:
    principal.require(scope=Scope.WORKFLOW)
    with workspace.sessions() as session, session.begin():
        org = find_organisation(session, ref)
        settings = workspace.settings.for_tenant(org.division_code)
        change_as(session, principal, org, body.duty, body.name, body.contact, settings=settings)
        return responsible_out(session, org)
