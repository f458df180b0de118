"""The signed-in person's notifications: the list, marking read,; the header's unread count is
`visitor.unread_count`. Reads and marks go through `workflow.notify`, which only ever touches the
person's own notifications."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from pubdata.db.models import User
from pubdata.web.templating import render
from pubdata.web.visitor import workspace_of
from pubdata.web.work import PrincipalDep
from pubdata.workflow import notify

router = APIRouter()


@router.get("/inbox", response_class=HTMLResponse)
def inbox(request: Request, principal: PrincipalDep, unread: str = "") -> HTMLResponse:
    with workspace_of(request).sessions() as session:
        user = session.scalar(select(User).where(User.login == principal.user.login))
        found = notify.inbox(session, user, unread_only=bool(unread)) if user is not None else []
        shown = [
            {
                "id": n.id,
                "subject": n.subject,
                "body": n.body,
                "link": n.link
                if (n.link or "").startswith("/") and not (n.link or "").startswith("//")
                else None,
                "kind": n.kind,
                "created_at": n.created_at,
                "read": n.read_at is not None,
            }
            for n in found
        ]
    return render(request, "inbox.html", {"notifications": shown, "unread_only": bool(unread)})


@router.post("/inbox/read")
def mark_read(
    request: Request, principal: PrincipalDep, notification: Annotated[list[int] | None, Form()] = None
) -> Response:
    """Marks the ones named (all when none is named) read; others' ids simply match nothing."""
    with workspace_of(request).sessions() as session, session.begin():
        user = session.scalar(select(User).where(User.login == principal.user.login))
        if user is not None:
            notify.mark_read(session, user, notification)
    return RedirectResponse("/inbox", status_code=303)
