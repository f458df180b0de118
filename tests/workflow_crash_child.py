"""Child of tests/test_workflow_crash.py: takes one workflow decision and may SIGKILL itself inside it.

Usage: ``workflow_crash_child.py HOME approve|accept ID NOW POINT``. It prints ``ready`` right before
the decision (the parent's timer starts there) and ``done`` after the commit. POINT names where the
child kills itself: ``none`` (never — the parent may kill it at a random moment), right after a flush
that wrote a grant row, an audit event of a given action or a notification, just before the commit,
or just after it.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from pubdata.db.models import AuditEvent, Grant, Notification
from pubdata.gateway.identity import find_user
from pubdata.gateway.roles import Principal, Scope
from pubdata.workflow import objections
from pubdata.workflow.decisions import Decision, act
from pubdata.workflow.request_states import Action
from pubdata.workspace import Workspace

#: Who takes each decision in the demo: the social-insurance department approves its own entry;
#: the provincial data bureau, competent for the province, accepts objections to it.
DECIDERS = {"approve": "zj_rst", "accept": "zj_dsj"}


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def wrote(predicate: Callable[[Any], bool]) -> Callable[[Session, Any], None]:
    """An `after_flush` listener that dies once the flush wrote an object `predicate` accepts."""

    def listener(session: Session, _context: Any) -> None:
        if any(predicate(obj) for obj in session.new):
            die()

    return listener


def event_of(action: str) -> Callable[[Any], bool]:
    return lambda obj: isinstance(obj, AuditEvent) and obj.action == action


FLUSH_POINTS: dict[str, Callable[[Any], bool]] = {
    "grant_flushed": lambda obj: isinstance(obj, Grant),
    "grant_event_flushed": lambda obj: isinstance(obj, AuditEvent) and obj.action.startswith("grant."),
    "approve_event_flushed": event_of("request.approve"),
    "accept_event_flushed": event_of("objection.accept"),
    "flag_event_flushed": event_of("objection.flag"),
    "notification_flushed": lambda obj: isinstance(obj, Notification),
}


def arm(point: str) -> None:
    if point in FLUSH_POINTS:
        event.listen(Session, "after_flush", wrote(FLUSH_POINTS[point]))
    elif point == "before_commit":
        event.listen(Session, "before_commit", lambda _session: die())
    elif point == "after_commit":
        event.listen(Session, "after_commit", lambda _session: die())
    elif point != "none":
        raise SystemExit(f"unknown kill point {point!r}")


def principal(workspace: Workspace, login: str) -> Principal:
    with workspace.sessions() as session:
        user = find_user(session, login)
        _ = user.role_rows, user.organisation
        session.expunge_all()
    return Principal(user, user.organisation, user.roles, frozenset(Scope))


def main(home: str, decision: str, target_id: int, now: dt.datetime, point: str) -> None:
    workspace = Workspace.open(home)
    who = principal(workspace, DECIDERS[decision])
    arm(point)
    print("ready", flush=True)
    if decision == "approve":
        act(workspace.sessions, who, target_id, Action.APPROVE, Decision(), workspace.settings, now)
    else:
        with workspace.sessions() as session, session.begin():
            objections.accept(session, who, target_id, now=now, settings=workspace.settings)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), dt.datetime.fromisoformat(sys.argv[4]), sys.argv[5])
