"""Objections (REQ-12) and their deadlines (REQ-13) on the demo province: who may make each move,
bad input, one winner for two decisions at once, and escalation that happens once."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from objections_support import (
    CITIZEN,
    COMPETENT,
    CONSUMER,
    NOW,
    PROVIDER,
    SOCIAL,
    STRANGER,
    add_accounts,
    key_of,
    lift_objection_limits,
    move,
    objection_in,
    principal,
    raise_on,
    served_record,
    state_of,
)
from pubdata.catalog.service import get_entry
from pubdata.db.models import AuditEvent, Notification, User
from pubdata.demo.build import build_demo
from pubdata.errors import InputError, NotFound, RuleViolation
from pubdata.gateway.roles import NotAuthorised
from pubdata.workflow import objections
from pubdata.workflow.objection_records import check_records
from pubdata.workflow.objection_states import ObjectionState, transition
from pubdata.workflow.tick import TASKS
from pubdata.workspace import Workspace

pytestmark = pytest.mark.req("REQ-12", "states")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    home = tmp_path_factory.mktemp("objections") / "home"
    build_demo(home, scale=0.02)
    workspace = Workspace.open(home)
    add_accounts(workspace)
    lift_objection_limits(workspace)
    yield workspace


def _events(workspace: Workspace, objection_id: int, action: str | None = None) -> list[AuditEvent]:
    with workspace.sessions() as session:
        query = select(AuditEvent).where(AuditEvent.target == f"objection:{objection_id}")
        if action:
            query = query.where(AuditEvent.action == action)
        return list(session.scalars(query.order_by(AuditEvent.id)))


def _inbox(workspace: Workspace, login: str, kind: str) -> int:
    with workspace.sessions() as session:
        user = session.scalar(select(User).where(User.login == login))
        assert user is not None
        rows = session.scalars(
            select(Notification).where(Notification.user_id == user.id, Notification.kind == kind)
        )
        return len(list(rows))


# --- the moves and who may make them -------------------------------------------------------------

#: (state the objection is in, action, who tries, extra arguments, allowed)
MOVES = [
    ("submitted", "accept", COMPETENT, {}, True),
    ("submitted", "accept", CONSUMER, {}, False),
    ("submitted", "accept", PROVIDER, {}, False),
    ("submitted", "reject", COMPETENT, {"reason": "不属于本目录数据"}, True),
    ("submitted", "reject", PROVIDER, {"reason": "x"}, False),
    ("flagged", "uphold", PROVIDER, {"reason": "经核实无误"}, True),
    ("flagged", "uphold", COMPETENT, {"reason": "x"}, False),
    ("flagged", "uphold", CONSUMER, {"reason": "x"}, False),
    ("unflagged", "archive", COMPETENT, {}, True),
    ("unflagged", "archive", PROVIDER, {}, False),
    ("rejected", "archive", COMPETENT, {}, True),
    ("rejected", "archive", CONSUMER, {}, False),
]
#: Where each allowed move leaves the objection.
AFTER = {"accept": "flagged", "reject": "rejected", "uphold": "unflagged", "archive": "archived"}


@pytest.mark.parametrize(("state", "action", "login", "extra", "allowed"), MOVES)
def test_who_may_make_each_move(
    demo: Workspace, state: str, action: str, login: str, extra: dict[str, str], allowed: bool
) -> None:
    objection_id = objection_in(
        demo, state, served_record(demo, MOVES.index((state, action, login, extra, allowed)))
    )
    if allowed:
        move(demo, login, action, objection_id, **extra)
        assert state_of(demo, objection_id) == AFTER[action]
        assert _events(demo, objection_id, f"objection.{action}")[-1].actor == login
        return
    with pytest.raises(NotAuthorised):
        move(demo, login, action, objection_id, **extra)
    assert state_of(demo, objection_id) == state
    refused = _events(demo, objection_id, f"objection.{action}")
    assert refused and refused[-1].outcome == "refused" and refused[-1].actor == login


@pytest.mark.req("REQ-12", "flag")
@pytest.mark.req("REQ-40", "objection-steps")
def test_accept_flags_in_the_same_transaction_and_notifies(demo: Workspace) -> None:
    objection_id = raise_on(demo, served_record(demo, 20))
    before = _inbox(demo, PROVIDER, "objection.flag")
    flagged = move(demo, COMPETENT, "accept", objection_id)
    assert flagged.state == "flagged" and flagged.handled_by == COMPETENT
    actions = [e.action for e in _events(demo, objection_id)]
    assert actions == ["objection.raise", "objection.accept", "objection.flag"]
    assert _inbox(demo, PROVIDER, "objection.flag") == before + 1
    assert _inbox(demo, CONSUMER, "objection.flag") >= 1
    # The verify step's deadline: 5 working days after Monday 2 March 2026 is Monday 9 March.
    assert flagged.due_at is not None
    assert flagged.due_at.replace(tzinfo=dt.UTC) == dt.datetime(2026, 3, 9, 15, 59, 59, tzinfo=dt.UTC)


def test_a_move_from_the_wrong_state_is_refused_and_audited(demo: Workspace) -> None:
    objection_id = objection_in(demo, "flagged", served_record(demo, 21))
    with pytest.raises(RuleViolation, match="must be submitted"):
        move(demo, COMPETENT, "accept", objection_id)
    assert _events(demo, objection_id, "objection.accept")[-1].outcome == "refused"
    with pytest.raises(RuleViolation):
        transition("archive", ObjectionState.FLAGGED)


def test_two_decisions_at_once_have_one_winner(demo: Workspace) -> None:
    objection_id = raise_on(demo, served_record(demo, 22))
    with demo.sessions() as stale_session:
        stale = objections.get_objection(stale_session, objection_id)
        move(demo, COMPETENT, "reject", objection_id, reason="重复提出")
        with pytest.raises(RuleViolation, match="already decided"):
            objections.move_objection(
                stale_session,
                stale,
                transition("accept", ObjectionState.SUBMITTED),
                COMPETENT,
                NOW,
                demo.settings,
            )
        stale_session.rollback()
    assert state_of(demo, objection_id) == "rejected"


# --- bad input ------------------------------------------------------------------------------------


def _raise(demo: Workspace, records: list[dict[str, str]], entry: str = SOCIAL, **kw: str) -> None:
    with demo.sessions() as session, session.begin():
        objections.raise_objection(
            session,
            principal(demo, kw.pop("login", CONSUMER)),
            entry,
            records,
            kw.pop("description", "有误"),
            now=NOW,
            settings=demo.settings,
            **kw,
        )


def test_bad_records_are_refused_with_the_field_named(demo: Workspace) -> None:
    record = key_of(served_record(demo, 30))
    with pytest.raises(InputError, match="'person', which is not a key field") as unknown:
        _raise(demo, [{**record, "person": "x"}])
    assert unknown.value.column == "person"
    with pytest.raises(InputError, match="does not give key field 'insurance_type'"):
        _raise(demo, [{"id_number": record["id_number"]}])
    with pytest.raises(InputError, match="not a valid identity number"):
        _raise(demo, [{**record, "id_number": "330102198001010012"}])
    with pytest.raises(InputError, match="at least one record"):
        _raise(demo, [])
    with pytest.raises(InputError, match="description"):
        _raise(demo, [record], description="  ")


def test_an_entry_without_key_fields_takes_no_record_objections(demo: Workspace) -> None:
    with demo.sessions() as session, pytest.raises(InputError, match="declares no key fields"):
        check_records(get_entry(session, "tt_gift_records"), [{"id": "1"}])


def test_reject_and_uphold_need_a_reason(demo: Workspace) -> None:
    objection_id = raise_on(demo, served_record(demo, 31))
    with pytest.raises(InputError, match="reason"):
        move(demo, COMPETENT, "reject", objection_id, reason=" ")
    move(demo, COMPETENT, "accept", objection_id)
    with pytest.raises(InputError, match="reason"):
        move(demo, PROVIDER, "uphold", objection_id, reason="")
    assert state_of(demo, objection_id) == "flagged"


@pytest.mark.req("REQ-12", "flag")
def test_a_consumer_without_a_grant_may_not_object_nor_an_unverified_data_subject(demo: Workspace) -> None:
    record = served_record(demo, 32)
    with pytest.raises(NotAuthorised, match="only staff of an organisation holding a grant"):
        raise_on(demo, record, login=STRANGER)
    with demo.sessions() as session:
        refused = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "objection.raise", AuditEvent.actor == STRANGER)
        ).all()
    assert [e.outcome for e in refused] == ["refused"]
    with pytest.raises(NotAuthorised, match="verified identity"):
        raise_on(demo, record, login=CITIZEN, kind="data_subject")


@pytest.mark.req("REQ-12", "flag")
def test_an_unconditional_entry_takes_objections_from_any_consumer(demo: Workspace) -> None:
    with demo.sessions() as session, session.begin():
        found = objections.raise_objection(
            session,
            principal(demo, STRANGER),
            "zgh_member_statistics",
            [{"division_code": "330400000000", "year": "2024"}],
            "会员人数有误",
            now=NOW,
            settings=demo.settings,
        )
        assert found.record_keys == [{"division_code": "330400000000", "year": 2024}]


# --- deadlines (REQ-13) ---------------------------------------------------------------------------


@pytest.mark.req("REQ-13", "escalation")
def test_an_overdue_step_is_escalated_once(demo: Workspace) -> None:
    objection_id = raise_on(demo, served_record(demo, 40))
    escalate = TASKS["objections.escalate"]
    assert escalate(demo, NOW + dt.timedelta(hours=1)) == 0  # due Tuesday 3 March, not yet
    before = _inbox(demo, COMPETENT, "objection.escalate")
    late = dt.datetime(2026, 3, 4, 1, 0, tzinfo=dt.UTC)  # Wednesday morning in Hangzhou
    assert escalate(demo, late) >= 1
    assert escalate(demo, late) == 0
    assert escalate(demo, late + dt.timedelta(days=1)) == 0
    assert len(_events(demo, objection_id, "objection.escalate")) == 1
    assert _inbox(demo, COMPETENT, "objection.escalate") > before
    with demo.sessions() as session:
        assert objections.get_objection(session, objection_id).escalated_at is not None
    # A new step has a deadline of its own and may be escalated again, once.
    move(demo, COMPETENT, "accept", objection_id, now=late)
    assert escalate(demo, late + dt.timedelta(days=14)) >= 1
    assert len(_events(demo, objection_id, "objection.escalate")) == 2


def test_verified_objections_are_archived_after_a_while(demo: Workspace) -> None:
    objection_id = objection_in(demo, "unflagged", served_record(demo, 41))
    archive = TASKS["objections.archive"]
    assert archive(demo, NOW + dt.timedelta(days=29)) == 0
    assert archive(demo, NOW + dt.timedelta(days=31)) >= 1
    assert state_of(demo, objection_id) == "archived"
    assert archive(demo, NOW + dt.timedelta(days=31)) == 0
    assert _events(demo, objection_id, "objection.archive")[-1].actor == objections.PLATFORM


def test_a_correction_must_name_a_version_after_the_flagging(demo: Workspace, tmp_path: Path) -> None:
    objection_id = objection_in(demo, "flagged", served_record(demo, 42))
    with pytest.raises(RuleViolation, match="after the records were flagged"):
        objections.correct(demo, principal(demo, PROVIDER), objection_id, version=0, now=NOW)
    with pytest.raises(NotAuthorised):
        objections.correct(demo, principal(demo, COMPETENT), objection_id, version=0, now=NOW)
    with pytest.raises(InputError, match="exactly one"):
        objections.correct(demo, principal(demo, PROVIDER), objection_id, now=NOW)
    assert state_of(demo, objection_id) == "flagged"


# --- the command line -----------------------------------------------------------------------------


def test_the_cli_raises_lists_accepts_and_shows(demo: Workspace) -> None:
    from typer.testing import CliRunner

    from pubdata.cli.main import app

    runner = CliRunner()
    home = ["--home", str(demo.home), "--json"]
    record = key_of(served_record(demo, 50))
    named = ",".join(f"{k}={v}" for k, v in record.items())
    raised = runner.invoke(
        app,
        ["objections", "raise", "--as", CONSUMER, "--entry", SOCIAL, "--record", named,
         "--description", "参保日期有误", *home],
    )  # fmt: skip
    assert raised.exit_code == 0, raised.output
    objection_id = json.loads(raised.output)["id"]
    waiting = runner.invoke(app, ["objections", "list", "--as", COMPETENT, "--view", "waiting", *home])
    assert waiting.exit_code == 0, waiting.output
    assert objection_id in [o["id"] for o in json.loads(waiting.output)]
    refused = runner.invoke(app, ["objections", "accept", "--as", PROVIDER, str(objection_id), *home])
    assert refused.exit_code != 0 and "may not" in refused.output
    accepted = runner.invoke(app, ["objections", "accept", "--as", COMPETENT, str(objection_id), *home])
    assert accepted.exit_code == 0, accepted.output
    assert json.loads(accepted.output)["state"]["value"] == "flagged"
    upheld = runner.invoke(
        app, ["objections", "uphold", "--as", PROVIDER, str(objection_id), "--reason", "无误", *home]
    )
    assert json.loads(upheld.output)["state"]["value"] == "unflagged"
    shown = runner.invoke(app, ["objections", "show", "--as", CONSUMER, str(objection_id), *home])
    actions = [e["action"] for e in json.loads(shown.output)["history"] if e["outcome"] == "ok"]
    assert actions == [
        "objection.raise",
        "objection.accept",
        "objection.flag",
        "objection.uphold",
        "objection.unflag",
    ]


def test_an_objection_to_a_draft_is_answered_as_one_to_an_unknown_entry(demo: Workspace) -> None:
    answers = []
    for code in ("jgzgh_courier_dormitory_rooms", "no_such_entry"):
        with pytest.raises(NotFound) as caught:
            _raise(demo, [{"id": "1"}], entry=code, login=CITIZEN, kind="data_subject")
        answers.append(str(caught.value).replace(code, "<code>"))
    assert answers[0] == answers[1]
