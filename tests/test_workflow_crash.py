"""kill -9 during a workflow decision: the item is wholly decided or wholly undecided, never half.

A child process (tests/workflow_crash_child.py) approves a sharing-request item — claim the item by
its lock_version, make the gateway grant, audit, notify, one transaction — or accepts an objection
(accept and flag in one transaction), and is killed: by itself at a chosen point (right after the
grant row, an audit event or a notification is flushed, just before or just after the commit) or by
this test at a random moment. After the kill the item is either untouched (no grant, no event, no
notification) or decided with exactly one grant it names, one event per move and its notifications;
``pubdata audit verify`` passes; and deciding again succeeds — or, when the first decision had
committed, is refused as already decided.
"""

from __future__ import annotations

import datetime as dt
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from pubdata.cli.main import app
from pubdata.db.models import AuditEvent, Grant, Notification, Objection, RequestItem
from pubdata.demo.build import build_demo
from pubdata.errors import RuleViolation
from pubdata.gateway.grants import grant_state
from pubdata.workflow import objections
from pubdata.workflow.decisions import Decision, act
from pubdata.workflow.request_states import Action
from pubdata.workflow.request_views import visible_request
from pubdata.workspace import Workspace
from requests_support import CONSUMER, NOW, SOCIAL, SOCIAL_FIELDS, file_request, principal

CHILD = Path(__file__).with_name("workflow_crash_child.py")
DECIDED_AT = NOW + dt.timedelta(hours=3)
#: Random kills fall within this many times an unkilled decision's duration (measured once per
#: module), so that they land before, inside and after the commit on a fast or a slow machine.
SPREAD = 1.5


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    home = tmp_path_factory.mktemp("workflow-crash") / "home"
    build_demo(home, scale=0.02)
    return Workspace.open(home)


def run_child(
    workspace: Workspace, decision: str, target_id: int, point: str, kill_after: float | None
) -> float:
    """Run the child's decision; kill it `kill_after` seconds after it is ready.

    Returns the seconds from ready to done for a child that was neither killed nor killed itself."""
    child = subprocess.Popen(
        [
            sys.executable,
            str(CHILD),
            str(workspace.home),
            decision,
            str(target_id),
            DECIDED_AT.isoformat(),
            point,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    ready = child.stdout.readline().strip()
    assert ready == "ready", child.stderr.read() if child.stderr else ""
    started = time.perf_counter()
    if kill_after is not None:
        time.sleep(kill_after)
        child.kill()
    elif point == "none":
        assert child.stdout.readline().strip() == "done", child.stderr.read() if child.stderr else ""
    took = time.perf_counter() - started
    child.wait(timeout=60)
    expected = (0,) if kill_after is None and point == "none" else (0, -9) if kill_after else (-9,)
    assert child.returncode in expected, child.stderr.read() if child.stderr else child.returncode
    return took


def audit_verifies(workspace: Workspace) -> None:
    result = CliRunner().invoke(app, ["audit", "verify", "--home", str(workspace.home)])
    assert result.exit_code == 0, result.output


def ok_events(session: Session, action: str, target: str) -> list[AuditEvent]:
    query = select(AuditEvent).where(
        AuditEvent.action == action, AuditEvent.target == target, AuditEvent.outcome == "ok"
    )
    return list(session.scalars(query))


def told(session: Session, kinds: tuple[str, ...], link: str) -> list[tuple[str, int]]:
    rows = session.execute(
        select(Notification.kind, Notification.user_id).where(
            Notification.kind.in_(kinds), Notification.link == link
        )
    )
    return [(kind, user_id) for kind, user_id in rows]


# --- approving a sharing-request item -----------------------------------------------------------


@dataclass(frozen=True)
class Before:
    """What the workspace held before the decision, to compare the outcome with."""

    grants: int
    grant_events: int
    lock_version: int


def pending_item(workspace: Workspace) -> tuple[int, int]:
    """A fresh request of the union, checked by the data bureau: (request id, item id) to decide."""
    request_id = file_request(
        workspace,
        [
            {
                "entry_code": SOCIAL,
                "fields": SOCIAL_FIELDS,
                "region_prefix": "3304",
                "region_field": "division_code",
            }
        ],
    )
    with workspace.sessions() as session:
        item_id = visible_request(session, principal(workspace, CONSUMER), request_id).items[0].id
    checked = act(
        workspace.sessions, principal(workspace, "zj_dsj"), item_id, Action.CHECK, Decision(),
        workspace.settings, NOW + dt.timedelta(hours=1),
    )  # fmt: skip
    assert checked["state"] == "pending_decision"
    return request_id, item_id


def before_approval(workspace: Workspace, item_id: int) -> Before:
    with workspace.sessions() as s:
        item = s.get(RequestItem, item_id)
        assert item is not None
        return Before(
            grants=int(s.scalar(select(func.count()).select_from(Grant)) or 0),
            grant_events=int(
                s.scalar(
                    select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "grant.create")
                )
                or 0
            ),
            lock_version=item.lock_version,
        )


def approval_state(workspace: Workspace, request_id: int, item_id: int, before: Before) -> str:
    """``pending`` or ``approved``, after asserting that the item is wholly one of them."""
    with workspace.sessions() as s:
        item = s.get(RequestItem, item_id)
        assert item is not None
        approvals = ok_events(s, "request.approve", f"request-item:{item_id}")
        notes = told(s, ("request.approve",), f"/requests/{request_id}")
        grants = list(s.scalars(select(Grant).order_by(Grant.id)))
        grant_events = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "grant.create")))
        if item.state == "pending_decision":
            assert item.grant_id is None and item.lock_version == before.lock_version
            assert approvals == [] and notes == []
            assert len(grants) == before.grants and len(grant_events) == before.grant_events
            return "pending"
        assert item.state == "approved" and item.lock_version == before.lock_version + 1
        assert len(grants) == before.grants + 1 and grants[-1].id == item.grant_id
        grant = grants[-1]
        assert grant.entry_id == item.entry_id and grant_state(grant, DECIDED_AT) == "active"
        assert len(grant_events) == before.grant_events + 1
        assert grant_events[-1].target == f"grant:{grant.id}"
        (approval,) = approvals
        assert approval.detail["grant_id"] == grant.id
        assert notes and len(notes) == len(set(notes))
        return "approved"


def approve_again(workspace: Workspace, request_id: int, item_id: int, before: Before, first: str) -> None:
    """A second, unkilled decision: it succeeds, or is refused when the first committed."""

    def decide() -> dict[str, Any]:
        return act(
            workspace.sessions, principal(workspace, "zj_rst"), item_id, Action.APPROVE, Decision(),
            workspace.settings, DECIDED_AT,
        )  # fmt: skip

    if first == "approved":
        with pytest.raises(RuleViolation, match="already decided"):
            decide()
    else:
        assert decide()["state"] == "approved"
    assert approval_state(workspace, request_id, item_id, before) == "approved"
    audit_verifies(workspace)


#: Where the child kills itself, and whether the decision had committed by then.
APPROVE_POINTS = {
    "grant_flushed": "pending",
    "grant_event_flushed": "pending",
    "approve_event_flushed": "pending",
    "notification_flushed": "pending",
    "before_commit": "pending",
    "after_commit": "approved",
}


@pytest.mark.parametrize("point", list(APPROVE_POINTS))
def test_an_approval_killed_at_a_chosen_point_is_all_or_nothing(workspace: Workspace, point: str) -> None:
    request_id, item_id = pending_item(workspace)
    before = before_approval(workspace, item_id)
    run_child(workspace, "approve", item_id, point, None)
    first = approval_state(workspace, request_id, item_id, before)
    assert first == APPROVE_POINTS[point]
    audit_verifies(workspace)
    approve_again(workspace, request_id, item_id, before, first)


@pytest.fixture(scope="module")
def approve_seconds(workspace: Workspace) -> float:
    """How long an unkilled approval takes in the child, which also leaves the whole approval."""
    request_id, item_id = pending_item(workspace)
    before = before_approval(workspace, item_id)
    took = run_child(workspace, "approve", item_id, "none", None)
    assert approval_state(workspace, request_id, item_id, before) == "approved"
    return took


@pytest.mark.parametrize("seed", range(4))
def test_an_approval_killed_at_a_random_moment_is_all_or_nothing(
    workspace: Workspace, approve_seconds: float, seed: int
) -> None:
    request_id, item_id = pending_item(workspace)
    before = before_approval(workspace, item_id)
    run_child(
        workspace, "approve", item_id, "none", random.Random(seed).uniform(0.0, SPREAD * approve_seconds)
    )
    first = approval_state(workspace, request_id, item_id, before)
    audit_verifies(workspace)
    approve_again(workspace, request_id, item_id, before, first)


# --- accepting an objection: accept and flag together --------------------------------------------


def submitted_objection(workspace: Workspace) -> tuple[int, int]:
    """A fresh objection of the union to one enrolment record: (objection id, its lock_version)."""
    with workspace.sessions() as session:
        demo = session.scalars(select(Objection).order_by(Objection.id)).first()
        assert demo is not None, "the demo holds a flagged objection"
        records = list(demo.record_keys)
    with workspace.sessions() as session, session.begin():
        objection = objections.raise_objection(
            session, principal(workspace, CONSUMER), SOCIAL, records, "参保状态有误，请核实",
            now=NOW, settings=workspace.settings,
        )  # fmt: skip
        return objection.id, objection.lock_version


def acceptance_state(workspace: Workspace, objection_id: int, lock_version: int) -> str:
    """``submitted`` or ``flagged``, after asserting that the objection is wholly one of them."""
    target, link = f"objection:{objection_id}", f"/objections/{objection_id}"
    with workspace.sessions() as s:
        objection = s.get(Objection, objection_id)
        assert objection is not None
        accepts = ok_events(s, "objection.accept", target)
        flags = ok_events(s, "objection.flag", target)
        notes = told(s, ("objection.accept", "objection.flag"), link)
        if objection.state == "submitted":
            assert objection.lock_version == lock_version
            assert accepts == [] and flags == [] and notes == []
            return "submitted"
        assert objection.state == "flagged" and objection.lock_version == lock_version + 2
        assert len(accepts) == 1 and len(flags) == 1 and accepts[0].id < flags[0].id
        assert {kind for kind, _ in notes} == {"objection.accept", "objection.flag"}
        assert len(notes) == len(set(notes))
        return "flagged"


def accept_again(workspace: Workspace, objection_id: int, lock_version: int, first: str) -> None:
    def accept() -> None:
        with workspace.sessions() as session, session.begin():
            objections.accept(
                session,
                principal(workspace, "zj_dsj"),
                objection_id,
                now=DECIDED_AT,
                settings=workspace.settings,
            )

    if first == "flagged":
        with pytest.raises(RuleViolation, match="cannot be accepted"):
            accept()
    else:
        accept()
    assert acceptance_state(workspace, objection_id, lock_version) == "flagged"
    audit_verifies(workspace)


ACCEPT_POINTS = {
    "accept_event_flushed": "submitted",
    "flag_event_flushed": "submitted",
    "before_commit": "submitted",
    "after_commit": "flagged",
}


@pytest.mark.parametrize("point", list(ACCEPT_POINTS))
def test_an_acceptance_killed_at_a_chosen_point_flags_with_it_or_not_at_all(
    workspace: Workspace, point: str
) -> None:
    objection_id, lock_version = submitted_objection(workspace)
    run_child(workspace, "accept", objection_id, point, None)
    first = acceptance_state(workspace, objection_id, lock_version)
    assert first == ACCEPT_POINTS[point]
    audit_verifies(workspace)
    accept_again(workspace, objection_id, lock_version, first)


@pytest.fixture(scope="module")
def accept_seconds(workspace: Workspace) -> float:
    """How long an unkilled acceptance takes in the child, which also leaves it accepted and flagged."""
    objection_id, lock_version = submitted_objection(workspace)
    took = run_child(workspace, "accept", objection_id, "none", None)
    assert acceptance_state(workspace, objection_id, lock_version) == "flagged"
    return took


@pytest.mark.parametrize("seed", range(3))
def test_an_acceptance_killed_at_a_random_moment_flags_with_it_or_not_at_all(
    workspace: Workspace, accept_seconds: float, seed: int
) -> None:
    objection_id, lock_version = submitted_objection(workspace)
    run_child(
        workspace, "accept", objection_id, "none", random.Random(seed).uniform(0.0, SPREAD * accept_seconds)
    )
    first = acceptance_state(workspace, objection_id, lock_version)
    audit_verifies(workspace)
    accept_again(workspace, objection_id, lock_version, first)
