"""The request workflow's refusals, deadlines, races and periodic tasks, on the demo province, and
its API and CLI surfaces (REQ-15, REQ-16, REQ-17)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pubdata import audit
from pubdata.api.app import create_app
from pubdata.cli.main import app as cli
from pubdata.clock import fixed_clock
from pubdata.db.models import AuditEvent, Grant, RequestItem
from pubdata.demo.build import build_demo
from pubdata.errors import InputError, RuleViolation
from pubdata.gateway.identity import issue_token
from pubdata.gateway.roles import NotAuthorised, Role, Scope
from pubdata.workflow.decisions import Decision, act
from pubdata.workflow.escalation import escalate_overdue
from pubdata.workflow.request_states import Action
from pubdata.workflow.scheduler import TickScheduler
from pubdata.workflow.working_days import LOCAL_TZ
from pubdata.workspace import Workspace
from requests_support import (
    COMPETENT,
    CONSUMER,
    HRSS,
    NOW,
    PARK_APP,
    PROVIDER,
    SOCIAL,
    UNTIL,
    ensure_user,
    file_request,
    principal,
)  # fmt: skip

OUTPATIENT = "wjw_outpatient_visits"
LOCAL = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    home: Path = tmp_path_factory.mktemp("request-rules") / "home"
    build_demo(home, scale=0.02, clock=fixed_clock(NOW))
    workspace = Workspace.open(home, clock=fixed_clock(NOW))
    ensure_user(workspace, PROVIDER, HRSS, Role.PROVIDER)
    ensure_user(workspace, "nx_zgh", "湖州市南浔区总工会", Role.CONSUMER)
    return workspace


def _item(workspace: Workspace, request_id: int) -> RequestItem:
    with workspace.sessions() as session:
        return session.query(RequestItem).filter_by(request_id=request_id).one()


def _pending_decision(workspace: Workspace) -> int:
    item_id = _item(workspace, file_request(workspace, [{"entry_code": SOCIAL, "fields": ["status"]}])).id
    act(
        workspace.sessions,
        principal(workspace, COMPETENT),
        item_id,
        Action.CHECK,
        Decision(),
        workspace.settings,
        NOW,
    )
    return item_id


@pytest.mark.req("REQ-16", "not-shared-path", "coordination")
def test_a_not_shared_entry_needs_a_dispute_reason_and_then_goes_to_coordination(
    workspace: Workspace,
) -> None:
    with pytest.raises(RuleViolation, match="only through a dispute"):
        file_request(workspace, [{"entry_code": OUTPATIENT, "fields": ["department"]}])
    with workspace.sessions() as session:
        refused = audit.list_events(session, "request.submit", limit=1)[-1]
        assert refused.outcome == "refused" and refused.detail["req"] == "REQ-16"
    request_id = file_request(
        workspace,
        [{"entry_code": OUTPATIENT, "fields": ["department"], "dispute_reason": "职工医疗互助核查必需"}],
    )
    item = _item(workspace, request_id)
    done = act(workspace.sessions, principal(workspace, COMPETENT), item.id, Action.CHECK, Decision(),
               workspace.settings, NOW)  # fmt: skip
    assert done["state"] == "in_coordination" and done["step"] == "coordinate"


@pytest.mark.req("REQ-15", "request-record")
@pytest.mark.parametrize(
    ("terms", "items", "error", "message"),
    [
        ({}, [{"entry_code": SOCIAL, "fields": ["no_such_field"]}], InputError, "has no field no_such_field"),
        ({"valid_from": NOW - dt.timedelta(days=30), "valid_until": NOW - dt.timedelta(days=2)},
         [{"entry_code": SOCIAL, "fields": ["status"]}], RuleViolation, "cannot lie in the past"),
        ({"valid_until": NOW + dt.timedelta(days=400)}, [{"entry_code": SOCIAL, "fields": ["status"]}],
         RuleViolation, "at most 365 days"),
        ({"purpose": "", "scenario": ""}, [{"entry_code": SOCIAL, "fields": ["status"]}], InputError,
         r"lacks purpose \(用途\); scenario"),
        ({}, [], InputError, "at least one entry"),
        ({"application": "gat_population_service"}, [{"entry_code": SOCIAL, "fields": ["status"]}],
         RuleViolation, "belongs to another organisation"),
        ({}, [{"entry_code": "jxzgh_park_members", "fields": ["name"]}], InputError,
         "reads it without a grant"),
    ],
)  # fmt: skip
def test_bad_requests_are_refused_whole(
    workspace: Workspace,
    terms: dict[str, Any],
    items: list[dict[str, Any]],
    error: type[Exception],
    message: str,
) -> None:
    with workspace.sessions() as session:
        before = session.query(RequestItem).filter(RequestItem.state != "draft").count()
    with pytest.raises(error, match=message):
        file_request(workspace, items, **terms)
    with workspace.sessions() as session:
        assert session.query(RequestItem).filter(RequestItem.state != "draft").count() == before


@pytest.mark.req("REQ-16", "restricted-path", "refusal-reasons")
def test_decisions_by_the_wrong_organisation_or_without_reason_or_wider_are_refused(
    workspace: Workspace,
) -> None:
    item_id = _pending_decision(workspace)
    with pytest.raises(NotAuthorised, match="only 公共数据提供单位 staff of 浙江省人力资源和社会保障厅"):
        act(workspace.sessions, principal(workspace, "zj_gat"), item_id, Action.APPROVE, Decision(),
            workspace.settings, NOW)  # fmt: skip
    with pytest.raises(InputError, match="needs a reason"):
        act(workspace.sessions, principal(workspace, PROVIDER), item_id, Action.REFUSE, Decision(),
            workspace.settings, NOW)  # fmt: skip
    with pytest.raises(InputError, match="never widen"):
        act(workspace.sessions, principal(workspace, PROVIDER), item_id, Action.APPROVE,
            Decision(fields=["status", "name"]), workspace.settings, NOW)  # fmt: skip
    with pytest.raises(InputError, match="cannot extend"):
        act(workspace.sessions, principal(workspace, PROVIDER), item_id, Action.APPROVE,
            Decision(valid_until=UNTIL + dt.timedelta(days=1)), workspace.settings, NOW)  # fmt: skip
    with workspace.sessions() as session:
        assert session.get(RequestItem, item_id).state == "pending_decision"  # type: ignore[union-attr]
        assert session.query(Grant).filter(Grant.purpose == "园区职工参保核查（申请）").count() == 0


@pytest.mark.req("REQ-16", "tenant-deadlines")
def test_the_check_deadline_skips_the_2026_spring_festival(workspace: Workspace) -> None:
    filed = dt.datetime(2026, 2, 13, 10, 0, tzinfo=LOCAL)  # Friday before 春节
    item = _item(
        workspace, file_request(workspace, [{"entry_code": SOCIAL, "fields": ["status"]}], now=filed)
    )
    assert item.due_at is not None
    due = item.due_at.replace(tzinfo=dt.UTC).astimezone(LOCAL_TZ)
    # Day 1 is Saturday 14 February, a make-up working day (调休); the holiday runs 15–23 February.
    assert due == dt.datetime(2026, 2, 24, 23, 59, 59, tzinfo=LOCAL_TZ)
    shown = act(workspace.sessions, principal(workspace, CONSUMER), item.id, Action.WITHDRAW, Decision(),
                workspace.settings, dt.datetime(2026, 2, 14, 9, tzinfo=LOCAL))  # fmt: skip
    assert shown["state"] == "withdrawn"


def _race(workspace: Workspace, item_id: int) -> dict[str, object]:
    """The provider approves and refuses the same item from two threads (two sessions) at once."""
    provider = principal(workspace, PROVIDER)
    start = threading.Barrier(2)
    outcome: dict[str, object] = {}

    def decide(action: Action, decision: Decision) -> None:
        start.wait()
        try:
            outcome[action.value] = act(workspace.sessions, provider, item_id, action, decision,
                                        workspace.settings, NOW)  # fmt: skip
        except RuleViolation as why:
            outcome[action.value] = why

    threads = [
        threading.Thread(target=decide, args=(Action.APPROVE, Decision())),
        threading.Thread(target=decide, args=(Action.REFUSE, Decision(reason="数据正在治理"))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcome


def assert_one_winner(workspace: Workspace, item_id: int, outcome: dict[str, object]) -> None:
    lost = [v for v in outcome.values() if isinstance(v, RuleViolation)]
    won = [v for v in outcome.values() if isinstance(v, dict)]
    assert len(lost) == 1 and len(won) == 1 and "already decided" in str(lost[0])
    with workspace.sessions() as session:
        decided = session.query(AuditEvent).filter(
            AuditEvent.target == f"request-item:{item_id}",
            AuditEvent.action.in_(["request.approve", "request.refuse"]),
            AuditEvent.outcome == "ok",
        )
        assert decided.count() == 1
        item = session.get(RequestItem, item_id)
        assert item is not None
        assert (item.grant_id is not None) == (item.state == "approved")
        granted = session.query(Grant).filter(
            Grant.purpose == "园区职工参保核查（申请）", Grant.revoked_at.is_(None)
        )
        assert (item.grant_id in [g.id for g in granted]) == (item.state == "approved")


def test_approval_racing_a_refusal_has_exactly_one_winner(workspace: Workspace) -> None:
    for _ in range(3):
        item_id = _pending_decision(workspace)
        assert_one_winner(workspace, item_id, _race(workspace, item_id))


@pytest.mark.req("REQ-13", "escalation")
def test_escalation_happens_once_even_when_two_ticks_run_at_once(workspace: Workspace) -> None:
    item = _item(workspace, file_request(workspace, [{"entry_code": SOCIAL, "fields": ["status"]}]))
    late = NOW + dt.timedelta(days=14)
    counts: list[int] = []
    runners = [
        threading.Thread(target=lambda: counts.append(escalate_overdue(workspace, late))) for _ in range(2)
    ]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(60)
    assert escalate_overdue(workspace, late) == 0
    with workspace.sessions() as session:
        events = session.query(AuditEvent).filter(
            AuditEvent.action == "request.escalate", AuditEvent.target == f"request-item:{item.id}"
        )
        assert events.count() == 1 and events.one().detail["working_days_overdue"] > 0
        waiting = principal(workspace, COMPETENT)
        from pubdata.workflow.request_views import waiting as waiting_items

        overdue = [i.id for i in waiting_items(session, waiting, "overdue", late)]
        assert item.id in overdue


def test_the_scheduler_runs_survives_errors_and_stops() -> None:
    calls: list[int] = []

    def tick() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first run fails")
        return 0

    scheduler = TickScheduler(tick, 0.02).start()
    deadline = time.monotonic() + 10
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    scheduler.stop()
    assert len(calls) >= 3 and not scheduler.thread.is_alive()


def test_the_server_starts_and_stops_its_scheduler(workspace: Workspace) -> None:
    with TestClient(create_app(workspace)) as client:
        scheduler = client.app.state.tick  # type: ignore[attr-defined]
        assert isinstance(scheduler, TickScheduler) and scheduler.thread.is_alive()
    assert not scheduler.thread.is_alive()


def _token(workspace: Workspace, login: str) -> dict[str, str]:
    with workspace.sessions() as session, session.begin():
        issued = issue_token(
            session, login, [Scope.WORKFLOW], 30, "test", workspace.settings.default, name="wf"
        )
    return {"Authorization": f"Bearer {issued.token}"}


@pytest.mark.req("REQ-15", "request-record")
@pytest.mark.req("REQ-16", "restricted-path", "refusal-reasons")
def test_the_api_files_checks_and_hides_requests(workspace: Workspace) -> None:
    start = NOW + dt.timedelta(hours=1)
    body = {
        "application": PARK_APP, "legal_basis": "《工会法》第六条", "purpose": "API 申请", "scenario": "核查",
        "valid_from": start.isoformat(), "valid_until": (start + dt.timedelta(days=20)).isoformat(),
        "items": [{"entry": SOCIAL, "fields": ["status"]}], "submit": True,
    }  # fmt: skip
    server = create_app(workspace)
    server.state.clock = lambda: NOW
    with TestClient(server) as client:
        answer = client.post("/api/v1/requests", json=body, headers=_token(workspace, CONSUMER))
        assert answer.status_code == 200, answer.text
        filed = answer.json()
        assert filed["items"][0]["state"] == "pending_check"
        assert [e["action"] for e in filed["history"]] == ["request.create", "request.submit"]
        path = f"/api/v1/requests/{filed['id']}"
        assert client.get(path, headers=_token(workspace, "nx_zgh")).status_code == 404
        item = filed["items"][0]["id"]
        wrong = client.post(f"{path}/items/{item}/check", headers=_token(workspace, CONSUMER))
        assert wrong.status_code == 403, wrong.text
        checked = client.post(f"{path}/items/{item}/check", headers=_token(workspace, COMPETENT), json={})
        assert checked.status_code == 200 and checked.json()["items"][0]["state"] == "pending_decision"
        inbox = client.get("/api/v1/requests/waiting?view=provider", headers=_token(workspace, PROVIDER))
        assert item in [i["id"] for i in inbox.json()]
        refused = client.post(f"{path}/items/{item}/refuse", headers=_token(workspace, PROVIDER), json={})
        assert refused.status_code == 400 and "reason" in refused.json()["detail"]
        no_scope = client.get("/api/v1/requests", headers={"Authorization": "Bearer nope"})
        assert no_scope.status_code == 401


def test_the_cli_files_a_request_and_runs_the_tick(workspace: Workspace) -> None:
    runner = CliRunner()
    home = ["--home", str(workspace.home)]
    at = ["--now", "2026-03-02T09:00:00+08:00"]

    def run(*args: str) -> Any:
        result = runner.invoke(cli, [*args, *home, *at, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    new = run("requests", "new", "--as", CONSUMER, "--app", PARK_APP, "--legal-basis", "工会法", "--purpose",
              "CLI 申请", "--scenario", "核查", "--from", "2026-03-02", "--until", "2026-04-30")  # fmt: skip
    run("requests", "add", str(new["id"]), "--as", CONSUMER, "--entry", SOCIAL, "--field", "status")
    filed = run("requests", "submit", str(new["id"]), "--as", CONSUMER)
    item = filed["items"][0]
    assert item["state"] == "pending_check" and item["working_days_left"] == 2
    checked = run("requests", "check", str(item["id"]), "--as", COMPETENT)
    assert checked["state"] == "pending_decision"
    done = runner.invoke(cli, ["tick", *home, "--now", "2026-03-20T00:00:00+00:00", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["requests.escalate"] >= 1
    refused = runner.invoke(cli, ["requests", "refuse", str(item["id"]), "--as", PROVIDER, *home, *at])
    assert refused.exit_code != 0 and "needs a reason" in refused.output


def test_approval_racing_a_refusal_has_one_winner_on_postgresql(pg_workspace: Workspace) -> None:
    build_demo(pg_workspace.home, scale=0.02, clock=fixed_clock(NOW))
    workspace = Workspace.open(pg_workspace.home, clock=fixed_clock(NOW))
    assert workspace.db_url.startswith("postgresql")
    ensure_user(workspace, PROVIDER, HRSS, Role.PROVIDER)
    for _ in range(3):
        item_id = _pending_decision(workspace)
        assert_one_winner(workspace, item_id, _race(workspace, item_id))
    workspace.engine.dispose()
