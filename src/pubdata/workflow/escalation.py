"""Periodic work of the request workflow: escalate overdue steps, expire items whose grant ran out.

Both run from ``pubdata tick`` (`pubdata.workflow.tick.TASKS`). Each item is claimed by a
conditional update in a transaction of its own, so a second run — or a run at the same moment in
another process — finds nothing left to do for it, and one bad item does not hold back the rest.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pubdata import audit
from pubdata.db.models import Grant, RequestItem, aware
from pubdata.errors import PubdataError
from pubdata.workflow.decisions import requester_people
from pubdata.workflow.notify import notify
from pubdata.workflow.parties import competent_people
from pubdata.workflow.request_states import GRANTED, OPEN_STEPS, Action, ItemState
from pubdata.workflow.requests import item_target
from pubdata.workflow.working_days import LOCAL_TZ, is_overdue, working_days_between
from pubdata.workspace import Workspace

#: Who the platform's own steps are recorded as.
TICK_ACTOR = "system:tick"


def escalate_overdue(workspace: Workspace, now: dt.datetime) -> int:
    """Tell the competent department about every open step past its deadline, once per step."""
    with workspace.sessions() as session:
        candidates = session.execute(
            select(RequestItem.id, RequestItem.due_at).where(
                RequestItem.state.in_([s.value for s in OPEN_STEPS]),
                RequestItem.escalated_at.is_(None),
                RequestItem.due_at.is_not(None),
                RequestItem.due_at < now,
            )
        ).all()
    done = 0
    for item_id, due_at in candidates:
        if due_at is not None and is_overdue(aware(due_at), now):
            done += _escalate(workspace, item_id, now)
    return done


def _escalate(workspace: Workspace, item_id: int, now: dt.datetime) -> int:
    with workspace.sessions() as session, session.begin():
        claimed = session.execute(
            update(RequestItem)
            .where(RequestItem.id == item_id, RequestItem.escalated_at.is_(None))
            .where(RequestItem.state.in_([s.value for s in OPEN_STEPS]))
            .values(escalated_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return 0
        item = _load(session, item_id)
        state = ItemState(item.state)
        due = aware(item.due_at) if item.due_at else now
        late = -working_days_between(now, due)
        audit.record(
            session, TICK_ACTOR, f"request.{Action.ESCALATE}", item_target(item),
            request_id=item.request_id, entry=item.entry.code, state=state.value, step=OPEN_STEPS[state],
            due_at=due, working_days_overdue=late,
        )  # fmt: skip
        division = item.entry.provider.division_code
        notify(
            session,
            competent_people(session, division, excluding=item.request.requester),
            f"request.{Action.ESCALATE}",
            f"超期督办：{item.entry.name}（{state.label}）",
            f"共享申请 {item.request_id} 的 {item.entry.code}（{item.request.requester.name}）"
            f"在“{state.label}”环节已超过 {due.astimezone(LOCAL_TZ):%Y-%m-%d} 的办理期限 {late} 个工作日。",
            f"/requests/{item.request_id}",
            workspace.settings.for_tenant(division),
        )
    return 1


def expire_items(workspace: Workspace, now: dt.datetime) -> int:
    """Mark approved items whose grant has passed its end as expired, and tell the requester."""
    with workspace.sessions() as session:
        candidates = session.execute(
            select(RequestItem.id, RequestItem.state, RequestItem.lock_version)
            .join(Grant, Grant.id == RequestItem.grant_id)
            .where(RequestItem.state.in_([s.value for s in GRANTED]), Grant.valid_until <= now)
        ).all()
    return sum(
        _expire(workspace, item_id, ItemState(state), version, now) for item_id, state, version in candidates
    )


def _expire(workspace: Workspace, item_id: int, seen: ItemState, version: int, now: dt.datetime) -> int:
    with workspace.sessions() as session, session.begin():
        claimed = session.execute(
            update(RequestItem)
            .where(
                RequestItem.id == item_id,
                RequestItem.state == seen.value,
                RequestItem.lock_version == version,
            )
            .values(
                state=ItemState.EXPIRED.value, lock_version=version + 1, step_started_at=None, due_at=None
            )
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return 0
        item = _load(session, item_id)
        if item.grant is None:  # it was found by its grant, and its lock version has not moved since
            raise PubdataError(f"request item {item_id} was claimed for expiry without a grant")
        audit.record(
            session, TICK_ACTOR, f"request.{Action.EXPIRE}", item_target(item),
            request_id=item.request_id, entry=item.entry.code, from_state=seen.value,
            to_state=ItemState.EXPIRED.value, grant_id=item.grant_id,
            valid_until=aware(item.grant.valid_until),
        )  # fmt: skip
        notify(
            session,
            requester_people(session, item),
            f"request.{Action.EXPIRE}",
            f"授权到期：{item.entry.name}",
            f"共享申请 {item.request_id} 的 {item.entry.code} 的授权已于 "
            f"{aware(item.grant.valid_until).astimezone(LOCAL_TZ):%Y-%m-%d} 到期；如需继续使用请重新申请。",
            f"/requests/{item.request_id}",
            workspace.settings.for_tenant(item.entry.provider.division_code),
        )
    return 1


def _load(session: Session, item_id: int) -> RequestItem:
    item = session.get(RequestItem, item_id, populate_existing=True)
    if item is None:  # only ever asked for an item this transaction has just updated
        raise PubdataError(f"request item {item_id} vanished inside its own transaction")
    return item
