"""The periodic work of objections (REQ-13), run by `pubdata tick` and the server's scheduler.

Overdue steps are escalated to the competent department once per step; objections left unflagged
or rejected for `ARCHIVE_AFTER_DAYS` days are archived. Both claim each objection with a conditional
update, so two ticks at once never do a thing twice.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from pubdata import audit
from pubdata.db.models import Objection, aware, iso_or_none
from pubdata.errors import RuleViolation
from pubdata.workflow.notify import notify
from pubdata.workflow.objection_states import (
    ARCHIVABLE,
    ARCHIVE_AFTER_DAYS,
    DEADLINE_STEPS,
    ObjectionState,
    transition,
)
from pubdata.workflow.objections import PLATFORM, get_objection, move_objection, target
from pubdata.workflow.parties import competent_people
from pubdata.workflow.working_days import is_overdue
from pubdata.workspace import Workspace


def escalate_overdue(workspace: Workspace, now: dt.datetime) -> int:
    """Tell the competent department, once per step, about each step past its deadline."""
    with workspace.sessions() as session:
        open_ids = session.scalars(
            select(Objection.id).where(
                Objection.state.in_([s.value for s in DEADLINE_STEPS]),
                Objection.due_at.is_not(None),
                Objection.escalated_at.is_(None),
            )
        ).all()
    done = 0
    for objection_id in open_ids:
        with workspace.sessions() as session, session.begin():
            objection = get_objection(session, objection_id)
            if objection.due_at is None or objection.escalated_at is not None:
                continue
            if not is_overdue(aware(objection.due_at), now):
                continue
            claimed = session.execute(
                update(Objection)
                .where(
                    Objection.id == objection.id,
                    Objection.state == objection.state,
                    Objection.lock_version == objection.lock_version,
                    Objection.escalated_at.is_(None),
                )
                .values(escalated_at=now, lock_version=objection.lock_version + 1)
                .execution_options(synchronize_session=False)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                continue
            session.refresh(objection)
            entry = objection.entry
            state = ObjectionState(objection.state)
            audit.record(
                session, PLATFORM, "objection.escalate", target(objection.id),
                entry=entry.code, state=state.value, due_at=iso_or_none(objection.due_at),
            )  # fmt: skip
            notify(
                session,
                competent_people(session, entry.provider.division_code),
                "objection.escalate",
                f"数据异议 #{objection.id} 已超期",
                f"{entry.name}（{entry.code}）的数据异议 #{objection.id} "
                f"在「{state.label}」环节已超过办理时限。",
                f"/objections/{objection.id}",
                workspace.settings.for_tenant(entry.provider.division_code),
            )
            done += 1
    return done


def archive_stale(workspace: Workspace, now: dt.datetime) -> int:
    """Archive objections left unflagged or rejected for `ARCHIVE_AFTER_DAYS` days."""
    cutoff = now - dt.timedelta(days=ARCHIVE_AFTER_DAYS)
    with workspace.sessions() as session:
        candidates = session.execute(
            select(Objection.id, Objection.step_started_at).where(
                Objection.state.in_([s.value for s in ARCHIVABLE])
            )
        ).all()
    done = 0
    for objection_id, started in candidates:
        if started is None or aware(started) > cutoff:
            continue
        with workspace.sessions() as session, session.begin():
            objection = get_objection(session, objection_id)
            try:
                move = transition("archive", ObjectionState(objection.state))
                move_objection(session, objection, move, PLATFORM, now, workspace.settings, automatic=True)
            except RuleViolation:
                continue  # someone moved it meanwhile
            done += 1
    return done
