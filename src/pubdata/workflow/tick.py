"""``pubdata tick``: the periodic work of the workflow, run by cron or by the server's scheduler.

Each task looks at the clock and the database and does what is due — escalate an overdue step,
expire a grant's request, send queued mail — and says how many things it did. Every task is
idempotent: a second run at the same moment does nothing, and two runs at once never do a thing
twice (each claims its rows with a conditional update).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.orm import Session

from pubdata.workflow import objection_tick
from pubdata.workflow.escalation import escalate_overdue, expire_items
from pubdata.workflow.incident_reminders import remind_grave_incidents
from pubdata.workflow.notify import deliver_pending
from pubdata.workspace import Workspace

#: A task: (workspace, now) → how many things it did.
TickTask = Callable[[Workspace, dt.datetime], int]


def _send_mail(workspace: Workspace, now: dt.datetime) -> int:
    def sessions() -> Session:
        return workspace.sessions()

    report = deliver_pending(sessions, workspace.settings.default, now=now)
    return report.sent


#: Every periodic task, in the order they run; a new one is a line here.
def _purge_portal_sessions(workspace: Workspace, now: dt.datetime) -> int:
    from pubdata.web.sessions import purge_expired  # the portal's import cost only when ticking

    return purge_expired(workspace.sessions, now)


def _purge_sign_in_failures(workspace: Workspace, now: dt.datetime) -> int:
    from pubdata.web.lockout import purge_expired

    return purge_expired(workspace.sessions, now)


TASKS: dict[str, TickTask] = {
    "mail.send": _send_mail,
    "requests.escalate": escalate_overdue,
    "requests.expire": expire_items,
    "incident.remind": remind_grave_incidents,
    "objections.escalate": objection_tick.escalate_overdue,
    "objections.archive": objection_tick.archive_stale,
    "portal.sessions.purge": _purge_portal_sessions,
    "portal.lockout.purge": _purge_sign_in_failures,
}


def run_tick(workspace: Workspace, now: dt.datetime | None = None) -> dict[str, int]:
    """Run every task once; returns what each did."""
    now = now or workspace.clock()
    return {name: task(workspace, now) for name, task in TASKS.items()}
