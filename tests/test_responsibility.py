"""Responsible persons with history (REQ-25): who may change them, what is kept, what it blocks."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from pubdata.catalog.service import find_organisation, publish_entry, set_responsible_persons
from pubdata.db.models import AuditEvent, Notification, ResponsiblePerson, User
from pubdata.errors import InputError, RuleViolation
from pubdata.gateway.roles import NotAuthorised
from pubdata.workflow.responsibility import Duty, change_as, history, record_holder
from pubdata.workspace import Workspace
from workflow_world import MONDAY, SETTINGS, build_world, principal


@pytest.fixture
def world(session: Session) -> Session:
    build_world(session)
    return session


def current(session: Session, org: str) -> dict[str, tuple[str, str | None]]:
    rows = history(session, find_organisation(session, org))
    return {r.duty: (r.name, r.contact) for r in rows if r.ended_at is None}


@pytest.mark.req("REQ-25", "named-officers")
def test_registration_starts_the_history(world: Session) -> None:
    assert current(world, "市公安局") == {"head": ("张局长", "0571-1"), "security_officer": ("李安全", None)}


@pytest.mark.req("REQ-25", "named-officers")
def test_a_new_holder_ends_the_previous_row_audited_and_told_to_the_department(world: Session) -> None:
    police = find_organisation(world, "市公安局")
    changed = change_as(world, principal(world, "dsj"), police, Duty.HEAD, "刘局长", "0571-9", now=MONDAY)
    assert changed and police.head_name == "刘局长" and police.head_contact == "0571-9"
    heads = [r for r in history(world, police) if r.duty == "head"]
    assert [(r.name, r.ended_at is None, r.changed_by) for r in heads] == [
        ("张局长", False, "admin"),
        ("刘局长", True, "dsj"),
    ]
    assert heads[0].ended_at is not None and heads[0].ended_at.replace(tzinfo=None) == MONDAY.astimezone(
        dt.UTC
    ).replace(tzinfo=None)
    event = world.scalars(select(AuditEvent).where(AuditEvent.action == "org.responsible")).one()
    assert event.actor == "dsj" and event.detail["previous"] == "张局长" and event.detail["name"] == "刘局长"
    told = (
        world.execute(
            select(User.login)
            .join(Notification, Notification.user_id == User.id)
            .where(Notification.kind == "org.responsible")
        )
        .scalars()
        .all()
    )
    assert told == ["dsj"]
    # The same name and contact again changes nothing and records nothing.
    assert not change_as(world, principal(world, "dsj"), police, Duty.HEAD, "刘局长", "0571-9", now=MONDAY)
    assert len(world.scalars(select(AuditEvent).where(AuditEvent.action == "org.responsible")).all()) == 1


@pytest.mark.req("REQ-25", "named-officers", "publish-blocked")
def test_a_vacancy_is_recorded_and_blocks_publishing_until_filled(world: Session) -> None:
    police = find_organisation(world, "市公安局")
    admin = principal(world, "admin")
    change_as(world, admin, police, Duty.SECURITY_OFFICER, None, None, now=MONDAY)
    assert "security_officer" not in current(world, "市公安局")
    assert police.security_officer_name is None
    with pytest.raises(RuleViolation, match="has no security officer"):
        publish_entry(world, "population", "gat_clerk", SETTINGS)
    event = world.scalars(select(AuditEvent).where(AuditEvent.action == "org.responsible")).one()
    assert event.detail["vacant"] is True
    change_as(world, admin, police, Duty.SECURITY_OFFICER, "孙安全", "0571-3", now=MONDAY)
    assert publish_entry(world, "population", "gat_clerk", SETTINGS).state.value == "published"
    officers = [r.name for r in history(world, police) if r.duty == "security_officer"]
    assert officers == ["李安全", "孙安全"]


@pytest.mark.parametrize("login", ["gat_officer", "gat_clerk", "wjw_clerk", "auditor", "tiantai"])
def test_only_the_admin_or_a_covering_competent_department_may_change(world: Session, login: str) -> None:
    police = find_organisation(world, "市公安局")
    with pytest.raises(NotAuthorised, match="may not change the responsible persons"):
        change_as(world, principal(world, login), police, Duty.HEAD, "某人", None, now=MONDAY)
    assert police.head_name == "张局长"
    refusal = world.scalars(select(AuditEvent).where(AuditEvent.outcome == "refused")).all()
    assert refusal and refusal[-1].actor == login


def test_a_contact_without_a_name_is_refused(world: Session) -> None:
    police = find_organisation(world, "市公安局")
    with pytest.raises(InputError, match="without a name"):
        record_holder(world, police, Duty.HEAD, "  ", "0571-1", "admin", MONDAY)


@pytest.mark.req("REQ-25", "named-officers")
def test_the_catalogue_path_writes_history_too(world: Session) -> None:
    set_responsible_persons(world, "市卫健委", "王主任", None, "钱安全", "0571-5", "admin")
    health = find_organisation(world, "市卫健委")
    assert [(r.duty, r.name, r.ended_at is None) for r in history(world, health)] == [
        ("head", "王主任", True),
        ("security_officer", "赵安全", False),
        ("security_officer", "钱安全", True),
    ]


def test_two_changes_at_once_have_one_winner(workspace: Workspace) -> None:
    with workspace.sessions() as s, s.begin():
        build_world(s)
    with workspace.sessions() as first, workspace.sessions() as second:
        # Both read the head before either writes; the second write is then based on a stale read.
        b = find_organisation(second, "市公安局")
        with first.begin():
            a = find_organisation(first, "市公安局")
            assert a.head_name == b.head_name == "张局长"
            record_holder(first, a, Duty.HEAD, "甲", None, "dsj", MONDAY)
        second.commit()  # SQLite: let the reader's snapshot go, keep the stale object
        with pytest.raises(RuleViolation, match="changed by someone else"), second.begin():
            record_holder(second, b, Duty.HEAD, "乙", None, "admin", MONDAY)
    with workspace.sessions() as s:
        open_rows = s.scalars(
            select(ResponsiblePerson.name).where(
                ResponsiblePerson.duty == "head", ResponsiblePerson.ended_at.is_(None)
            )
        ).all()
    assert "甲" in open_rows and "乙" not in open_rows
