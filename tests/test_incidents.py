"""Security incidents (REQ-28): recorded, classified, told to the competent department, worked to the
end by the organisation and closed by the department; reminders for grave ones left open."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from pubdata.db.models import AuditEvent, Incident, Notification, User, aware
from pubdata.errors import InputError, NotFound, RuleViolation
from pubdata.gateway.roles import NotAuthorised
from pubdata.vocabulary import UnknownTerm
from pubdata.workflow import incidents
from pubdata.workflow.incident_reminders import REMIND_AFTER_WORKING_DAYS, remind_grave_incidents
from pubdata.workflow.incidents import IncidentCategory, Severity
from pubdata.workflow.working_days import add_working_days
from pubdata.workspace import Workspace
from workflow_world import MONDAY, build_world, principal


@pytest.fixture
def world(session: Session) -> Session:
    build_world(session)
    return session


def report(session: Session, login: str = "gat_officer", **overrides: Any) -> Incident:
    values: dict[str, Any] = {
        "title": "人口库接口被越权调用",
        "category": IncidentCategory.UNAUTHORISED_ACCESS,
        "severity": Severity.MAJOR,
        "occurred_at": MONDAY - dt.timedelta(hours=3),
        "description": "夜间发现异常调用",
        "entry_codes": ["POPULATION"],
        "now": MONDAY,
    }
    return incidents.report(session, principal(session, login), **{**values, **overrides})


def told(session: Session, kind: str) -> list[str]:
    query = (
        select(User.login)
        .join(Notification, Notification.user_id == User.id)
        .where(Notification.kind == kind)
        .order_by(Notification.id)
    )
    return list(session.scalars(query))


def actions(session: Session, target: str) -> list[tuple[str, str]]:
    rows = session.execute(
        select(AuditEvent.action, AuditEvent.outcome)
        .where(AuditEvent.target == target)
        .order_by(AuditEvent.id)
    )
    return [(a, o) for a, o in rows]


@pytest.mark.req("REQ-28", "record", "classify", "notify")
def test_a_report_is_recorded_classified_and_told_to_the_competent_department(world: Session) -> None:
    incident = report(world)
    assert incident.state == "reported" and incident.entry_codes == ["population"]
    assert incident.notified_at is not None
    assert aware(incident.notified_at) == MONDAY
    assert told(world, "incident.reported") == ["dsj"]  # the province covers Hangzhou; 天台 does not
    assert actions(world, f"incident:{incident.id}") == [("incident.report", "ok")]
    event = world.scalars(select(AuditEvent).where(AuditEvent.action == "incident.report")).one()
    assert event.detail["notified"] == ["dsj"] and event.detail["severity"] == "major"
    assert [(u.state, u.actor) for u in incident.updates] == [("reported", "gat_officer")]


@pytest.mark.req("REQ-28", "remediation")
def test_the_whole_life_and_who_takes_each_step(world: Session) -> None:
    incident = report(world, login="gat_clerk")
    target = f"incident:{incident.id}"
    officer, clerk, dsj = (principal(world, login) for login in ("gat_officer", "gat_clerk", "dsj"))
    # Only the organisation's staff work it: not the department, not another provider.
    for outsider in ("dsj", "wjw_clerk", "auditor"):
        with pytest.raises((NotAuthorised, NotFound)):
            incidents.move(world, principal(world, outsider), incident.id, "update", "看一下", now=MONDAY)
    incidents.move(world, officer, incident.id, "update", "已封禁异常账号", now=MONDAY)
    incidents.move(world, clerk, incident.id, "update", "已排查日志", now=MONDAY)
    incidents.move(world, officer, incident.id, "resolve", "漏洞已修复", now=MONDAY)
    assert incident.state == "resolved" and incident.resolved_at is not None
    # Closing is the department's alone; the organisation may reopen instead.
    with pytest.raises(NotAuthorised, match="competent department"):
        incidents.move(world, officer, incident.id, "close", "我们自己关", now=MONDAY)
    incidents.move(world, clerk, incident.id, "reopen", "复查发现仍有风险", now=MONDAY)
    assert incident.state == "remediating" and incident.resolved_at is None
    incidents.move(world, officer, incident.id, "resolve", "彻底修复", now=MONDAY)
    with pytest.raises(NotFound):  # 天台's department does not cover Hangzhou: it does not even see it
        incidents.move(world, principal(world, "tiantai"), incident.id, "close", "不归我管", now=MONDAY)
    incidents.move(world, dsj, incident.id, "close", "核查无误，结案", now=MONDAY)
    assert incident.state == "closed" and incident.closed_at is not None
    with pytest.raises(RuleViolation, match=r"is closed .*reopen is possible only from resolved"):
        incidents.move(world, clerk, incident.id, "reopen", "再开", now=MONDAY)
    assert [u.state for u in incident.updates] == [
        "reported", "remediating", "remediating", "resolved", "remediating", "resolved", "closed",
    ]  # fmt: skip
    assert incident.lock_version == 6
    ok = [a for a, o in actions(world, target) if o == "ok"]
    assert ok == ["incident.report", "incident.update", "incident.update", "incident.resolve",
                  "incident.reopen", "incident.resolve", "incident.close"]  # fmt: skip
    refused = [a for a, o in actions(world, target) if o == "refused"]
    assert refused.count("incident.close") == 1 and "incident.reopen" in refused
    assert told(world, "incident.close") == ["gat_officer"]  # the organisation's security officer


@pytest.mark.req("REQ-28", "remediation")
def test_a_step_needs_a_note_and_a_state_it_can_leave(world: Session) -> None:
    incident = report(world)
    officer = principal(world, "gat_officer")
    with pytest.raises(InputError, match="note"):
        incidents.move(world, officer, incident.id, "resolve", "  ", now=MONDAY)
    with pytest.raises(RuleViolation, match="reopen is possible only from resolved"):
        incidents.move(world, officer, incident.id, "reopen", "重开", now=MONDAY)


def test_a_stale_step_loses_to_the_one_that_moved_first(workspace: Workspace) -> None:
    with workspace.sessions() as s, s.begin():
        build_world(s)
        incident_id = report(s).id
    with workspace.sessions() as first, workspace.sessions() as second:
        stale = incidents.get(second, incident_id)
        assert stale.lock_version == 0
        second.commit()
        with first.begin():
            incidents.move(first, principal(first, "gat_officer"), incident_id, "resolve", "修复", now=MONDAY)
        with second.begin():
            second.add(stale)
            with pytest.raises(RuleViolation, match="already moved by someone else"):
                incidents.move(
                    second, principal(second, "gat_clerk"), incident_id, "update", "补充", now=MONDAY
                )


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"entry_codes": ["population", "no_such_entry"]}, InputError, "no catalogue entry no_such_entry"),
        ({"occurred_at": MONDAY + dt.timedelta(minutes=1)}, InputError, "in the future"),
        ({"occurred_at": dt.datetime(2026, 3, 1, 8)}, InputError, "time zone"),
        ({"title": "  "}, InputError, "title"),
    ],
)
def test_bad_reports_are_refused(
    world: Session, overrides: dict[str, Any], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        report(world, **overrides)
    assert world.scalar(select(Incident.id)) is None


@pytest.mark.req("REQ-28", "classify")
def test_categories_and_grades_are_closed_vocabularies() -> None:
    assert IncidentCategory.parse("数据泄露") is IncidentCategory.DATA_LEAK
    assert Severity.parse("特别重大") is Severity.ESPECIALLY_MAJOR
    with pytest.raises(UnknownTerm):
        IncidentCategory.parse("wildfire")
    with pytest.raises(UnknownTerm):
        Severity.parse("严重")


@pytest.mark.parametrize("login", ["dsj", "auditor", "citizen"])
def test_only_the_organisations_own_staff_report(world: Session, login: str) -> None:
    with pytest.raises(NotAuthorised):
        report(world, login=login)
    refusal = world.scalars(select(AuditEvent).where(AuditEvent.action == "incident.report")).one()
    assert refusal.outcome == "refused" and refusal.actor == login


def test_who_reads_which_incidents(world: Session) -> None:
    mine = report(world)
    theirs = report(world, login="wjw_clerk", entry_codes=[])

    def seen(login: str) -> set[int]:
        return {i.id for i in incidents.visible(world, principal(world, login))}

    assert seen("gat_clerk") == {mine.id}
    assert seen("wjw_clerk") == {theirs.id}
    assert seen("dsj") == seen("auditor") == {mine.id, theirs.id}
    assert seen("tiantai") == set() and seen("citizen") == set()
    with pytest.raises(NotFound):
        incidents.show(world, principal(world, "wjw_clerk"), mine.id)


@pytest.mark.req("REQ-28", "remediation")
def test_grave_incidents_left_open_are_brought_up_once_per_working_day(workspace: Workspace) -> None:
    with workspace.sessions() as s, s.begin():
        build_world(s)
        grave = report(s).id
        minor = report(s, severity=Severity.GENERAL).id
        settled = report(s, severity=Severity.ESPECIALLY_MAJOR).id
        incidents.move(s, principal(s, "gat_officer"), settled, "resolve", "已修复", now=MONDAY)
    early = add_working_days(MONDAY, REMIND_AFTER_WORKING_DAYS - 1).replace(hour=9)
    due = add_working_days(MONDAY, REMIND_AFTER_WORKING_DAYS).replace(hour=9)
    assert remind_grave_incidents(workspace, early) == 0
    assert remind_grave_incidents(workspace, due) == 1
    assert remind_grave_incidents(workspace, due.replace(hour=17)) == 0  # once a day
    saturday = due + dt.timedelta(days=(5 - due.weekday()) % 7)
    assert remind_grave_incidents(workspace, saturday) == 0  # nobody is at work
    next_day = add_working_days(due, 1).replace(hour=9)
    assert remind_grave_incidents(workspace, next_day) == 1
    with workspace.sessions() as s:
        reminders = s.scalars(select(AuditEvent.target).where(AuditEvent.action == "incident.remind")).all()
        assert reminders == [f"incident:{grave}"] * 2 and f"incident:{minor}" not in reminders
        assert told(s, "incident.reminder") == ["dsj", "dsj"]
