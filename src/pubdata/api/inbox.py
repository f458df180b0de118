"""The caller's own notifications (REQ-16, REQ-28): every signed-in caller has an inbox, and only theirs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from pubdata.api.deps import WorkspaceDep
from pubdata.api.query import PrincipalDep
from pubdata.api.schemas import ErrorOut, Moment
from pubdata.db.models import Notification
from pubdata.workflow.notify import inbox, mark_read

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])
_ERRORS: dict[int | str, dict[str, object]] = {401: {"model": ErrorOut, "description": "No valid token."}}


class NotificationOut(BaseModel):
    id: int
    kind: str = Field(description="What happened, e.g. `request.approve`, `objection.escalate`.")
    subject: str
    body: str
    link: str | None = Field(description="Where in the portal to act on it.")
    created_at: Moment
    read_at: Moment | None

    @classmethod
    def of(cls, row: Notification) -> NotificationOut:
        return cls(
            id=row.id, kind=row.kind, subject=row.subject, body=row.body, link=row.link,
            created_at=row.created_at, read_at=row.read_at,
        )  # fmt: skip


class ReadIn(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] | None = Field(
        default=None, max_length=1000, description="Notifications to mark read; omit for all of them."
    )


class ReadOut(BaseModel):
    marked: int = Field(description="How many of the caller's unread notifications are now read.")


@router.get("", response_model=list[NotificationOut], responses=_ERRORS, summary="My notifications")
def list_notifications(
    workspace: WorkspaceDep,
    principal: PrincipalDep,
    unread: Annotated[bool, Query(description="Only the unread ones.")] = False,
) -> list[NotificationOut]:
    with workspace.sessions() as session:
        return [NotificationOut.of(n) for n in inbox(session, principal.user, unread_only=unread)]


@router.post("/read", response_model=ReadOut, responses=_ERRORS, summary="Mark my notifications read")
def read_notifications(body: ReadIn, workspace: WorkspaceDep, principal: PrincipalDep) -> ReadOut:
    with workspace.sessions() as session, session.begin():
        return ReadOut(marked=mark_read(session, principal.user, body.ids))
