"""Every refusal leaves its audit event, whatever the face it came through (REQ-40): bad input to a
decision, a grant or a token, and asks for another organisation's request, which still answer the
same 404 as a number never given out; and a command run ``--as`` another login names its operator."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gateway_support import demo_users
from pubdata.cli.main import app as cli
from pubdata.cli.options import ACTOR
from pubdata.clock import fixed_clock
from pubdata.db.models import AuditEvent, RequestItem
from pubdata.demo.build import build_demo
from pubdata.gateway.identity import issue_token
from pubdata.gateway.roles import Role, Scope
from pubdata.workflow.decisions import Decision, act
from pubdata.workflow.refusals import DENIED
from pubdata.workflow.request_states import Action
from pubdata.workspace import Workspace
from requests_support import (
    COMPETENT,
    CONSUMER,
    HRSS,
    NOW,
    PROVIDER,
    SOCIAL,
    UNTIL,
    ensure_user,
    file_request,
)
from requests_support import principal as principal_of
from web_support import client_for, clocked_app, csrf_of

#: Signs in on the portal; a provider of another department, party to none of the union's requests.
OUTSIDER = "zj_gat"
#: The social-insurance provider's account with a password (the portal's provider).
PORTAL_PROVIDER = "zj_rst"
CLI_AT = ["--now", "2026-03-02T09:00:00+08:00"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, dict[str, Any]]]:
    home = tmp_path_factory.mktemp("refusals") / "home"
    build_demo(home, scale=0.02, clock=fixed_clock(NOW))
    workspace = Workspace.open(home, clock=fixed_clock(NOW))
    ensure_user(workspace, PROVIDER, HRSS, Role.PROVIDER)
    yield workspace, demo_users(home)
    workspace.engine.dispose()


@pytest.fixture(scope="module")
def workspace(world: tuple[Workspace, dict[str, Any]]) -> Workspace:
    return world[0]


def _bearer(workspace: Workspace, login: str) -> dict[str, str]:
    with workspace.sessions() as session, session.begin():
        issued = issue_token(session, login, [Scope.WORKFLOW], 30, "test", workspace.settings.default)
    return {"Authorization": f"Bearer {issued.token}"}


def _pending(workspace: Workspace) -> tuple[int, int]:
    """A request for two fields of Jiaxing's rows, checked: (request, item) waiting for the provider."""
    asked = {"fields": ["status", "division_code"], "region_prefix": "3304", "region_field": "division_code"}
    request_id = file_request(workspace, [{"entry_code": SOCIAL, **asked}])
    with workspace.sessions() as session:
        item_id = session.query(RequestItem).filter_by(request_id=request_id).one().id
    competent = principal_of(workspace, COMPETENT)
    act(workspace.sessions, competent, item_id, Action.CHECK, Decision(), workspace.settings, NOW)
    return request_id, item_id


def _refused(workspace: Workspace, action: str, target: str) -> AuditEvent:
    with workspace.sessions() as session:
        found = (
            session.query(AuditEvent)
            .filter_by(action=action, target=target, outcome="refused")
            .order_by(AuditEvent.id.desc())
            .first()
        )
    assert found is not None, f"no refusal of {action} on {target} on record"
    return found


def _cli(*args: str) -> Any:
    return CliRunner().invoke(cli, [*CLI_AT, *args])


@pytest.mark.req("REQ-40", "grants-refusals")
@pytest.mark.parametrize(
    ("narrowing", "column", "said"),
    [
        ({"fields": ["status", "name"]}, "fields", "name"),
        ({"region_prefix": "33"}, "region_prefix", "33"),
        ({"valid_until": (UNTIL + dt.timedelta(days=30)).isoformat()}, "valid_until", "2026-06-30"),
    ],
)
def test_a_decision_wider_than_the_request_is_audited_with_who_and_why(
    workspace: Workspace, narrowing: dict[str, Any], column: str, said: str
) -> None:
    request_id, item_id = _pending(workspace)
    path = f"/api/v1/requests/{request_id}/items/{item_id}/approve"
    with TestClient(clocked_app(workspace, NOW)) as client:
        answer = client.post(path, json=narrowing, headers=_bearer(workspace, PROVIDER))
    assert answer.status_code == 400, answer.text
    event = _refused(workspace, "request.approve", f"request-item:{item_id}")
    assert event.actor == PROVIDER
    assert event.detail["organisation"] == HRSS and event.detail["channel"] == "api"
    assert event.detail["code"] == "invalid" and event.detail["column"] == column
    # The reason is the sentence's template: what was refused, never the values it was filled with.
    assert "a decision" in event.detail["reason"] and said not in event.detail["reason"]
    with workspace.sessions() as session:
        assert session.get(RequestItem, item_id).state == "pending_decision"  # type: ignore[union-attr]


@pytest.mark.req("REQ-40", "grants-refusals")
def test_a_revocation_without_a_reason_is_audited_on_the_portal_and_the_command_line(
    world: tuple[Workspace, dict[str, Any]],
) -> None:
    workspace, users = world
    request_id, item_id = _pending(workspace)
    provider = principal_of(workspace, PROVIDER)
    done = act(workspace.sessions, provider, item_id, Action.APPROVE, Decision(), workspace.settings, NOW)
    client = client_for(clocked_app(workspace, NOW), users, PORTAL_PROVIDER)
    with client:
        page = client.get(f"/requests/{request_id}")
        assert page.status_code == 200, page.text
        answer = client.post(
            f"/requests/{request_id}/items/{item_id}/revoke",
            data={"reason": "", "csrf_token": csrf_of(page.text)},
            follow_redirects=False,
        )
    assert answer.status_code == 400, answer.text
    event = _refused(workspace, "request.revoke", f"request-item:{item_id}")
    assert (event.actor, event.detail["channel"]) == (PORTAL_PROVIDER, "portal")
    assert event.detail["column"] == "reason"
    assert event.detail["organisation"] == HRSS and event.detail["code"] == "invalid"

    grant = str(done["grant_id"])
    result = _cli("grants", "revoke", grant, "--reason", " ", "--home", str(workspace.home))
    assert result.exit_code == 2, result.output
    event = _refused(workspace, "grant.revoke", f"grant:{grant}")
    assert (event.actor, event.detail["channel"], event.detail["column"]) == (ACTOR, "cli", "reason")


@pytest.mark.req("REQ-40", "grants-refusals")
def test_a_token_longer_than_the_longest_is_audited_without_its_numbers(workspace: Workspace) -> None:
    home = ["--home", str(workspace.home)]
    result = _cli("tokens", "issue", "--user", CONSUMER, "--scope", "workflow", "--days", "91", *home)
    assert result.exit_code == 2, result.output
    event = _refused(workspace, "token.issue", CONSUMER)
    assert event.actor == ACTOR and event.detail["channel"] == "cli" and event.detail["code"] == "invalid"
    assert "{days}" in event.detail["reason"] and "91" not in json.dumps(event.detail)


@pytest.mark.req("REQ-40", "api-calls")
def test_another_organisations_request_answers_the_same_404_and_is_audited(
    world: tuple[Workspace, dict[str, Any]],
) -> None:
    workspace, users = world
    request_id, _item = _pending(workspace)
    never = 2**31 - 1
    with TestClient(clocked_app(workspace, NOW)) as client:
        token = _bearer(workspace, OUTSIDER)
        theirs = client.get(f"/api/v1/requests/{request_id}", headers=token)
        unknown = client.get(f"/api/v1/requests/{never}", headers=token)
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == json.loads(unknown.text.replace(str(never), str(request_id)))
    event = _refused(workspace, DENIED, f"request:{request_id}")
    assert (event.actor, event.detail["channel"]) == (OUTSIDER, "api")
    assert event.detail["organisation"] == "浙江省公安厅"
    assert event.detail["code"] == "not_found" and event.detail["id"] == str(request_id)
    assert _refused(workspace, DENIED, f"request:{never}").detail["kind"] == "request"

    with client_for(clocked_app(workspace, NOW), users, OUTSIDER) as portal:
        page = portal.get(f"/requests/{request_id}")
    assert page.status_code == 404 and "省人社厅" not in page.text
    event = _refused(workspace, DENIED, f"request:{request_id}")
    assert (event.actor, event.detail["channel"]) == (OUTSIDER, "portal")


def test_a_command_run_as_another_login_names_its_operator(workspace: Workspace) -> None:
    _request_id, item_id = _pending(workspace)
    home = ["--home", str(workspace.home)]
    result = _cli("requests", "refuse", str(item_id), "--as", PROVIDER, "--reason", "人员信息不全", *home)
    assert result.exit_code == 0, result.output
    with workspace.sessions() as session:
        event = (
            session.query(AuditEvent)
            .filter_by(action="request.refuse", target=f"request-item:{item_id}", outcome="ok")
            .one()
        )
    assert event.actor == PROVIDER
    assert event.detail["operator"] == ACTOR and event.detail["channel"] == "cli"


@pytest.mark.req("REQ-40", "api-calls")
def test_another_organisations_incident_answers_404_and_is_audited(
    world: tuple[Workspace, dict[str, Any]],
) -> None:
    workspace, users = world
    report = {
        "title": "接口越权",
        "category": "data_leak",
        "severity": "major",
        "occurred_at": "2026-03-02T08:00:00+08:00",
        "entry_codes": [SOCIAL],
    }
    with TestClient(clocked_app(workspace, NOW)) as client:
        created = client.post("/api/v1/incidents", json=report, headers=_bearer(workspace, PORTAL_PROVIDER))
        assert created.status_code == 201, created.text
        number = created.json()["id"]
        asked = client.get(f"/api/v1/incidents/{number}", headers=_bearer(workspace, OUTSIDER))
    assert asked.status_code == 404
    event = _refused(workspace, DENIED, f"incident:{number}")
    assert (event.actor, event.detail["channel"], event.detail["kind"]) == (OUTSIDER, "api", "incident")
    with client_for(clocked_app(workspace, NOW), users, OUTSIDER) as portal:
        assert portal.get(f"/incidents/{number}").status_code == 404
    assert _refused(workspace, DENIED, f"incident:{number}").detail["channel"] == "portal"


@pytest.mark.req("REQ-40", "grants-refusals")
def test_an_incomplete_cart_submitted_on_the_portal_is_audited(
    world: tuple[Workspace, dict[str, Any]],
) -> None:
    workspace, users = world
    with client_for(clocked_app(workspace, NOW), users, CONSUMER) as portal:
        token = csrf_of(portal.get("/cart").text)
        added = portal.post(
            "/cart/items",
            data={"entry": SOCIAL, "field": ["status"], "csrf_token": token},
            follow_redirects=False,
        )
        assert added.status_code == 303, added.text
        answer = portal.post(
            "/cart/submit", data={"purpose": "", "csrf_token": token}, follow_redirects=False
        )
    assert answer.status_code == 400, answer.text
    with workspace.sessions() as session:
        event = (
            session.query(AuditEvent)
            .filter_by(action="request.submit", actor=CONSUMER, outcome="refused")
            .order_by(AuditEvent.id.desc())
            .first()
        )
    assert event is not None and event.detail["channel"] == "portal"
    assert event.detail["code"] == "invalid" and event.detail["organisation"] == "嘉兴市总工会"


def test_a_step_by_the_wrong_party_is_audited_once(workspace: Workspace) -> None:
    """The service audits a wrong role itself; the face must not write the same refusal again."""
    request_id, item_id = _pending(workspace)
    path = f"/api/v1/requests/{request_id}/items/{item_id}/approve"
    with TestClient(clocked_app(workspace, NOW)) as client:
        answer = client.post(path, json={}, headers=_bearer(workspace, CONSUMER))
    assert answer.status_code == 403, answer.text
    with workspace.sessions() as session:
        refused = session.query(AuditEvent).filter_by(target=f"request-item:{item_id}", outcome="refused")
        assert [e.action for e in refused] == ["request.approve"]


@pytest.mark.req("REQ-40", "api-calls")
def test_an_objection_the_caller_may_not_see_is_audited_behind_its_404(
    world: tuple[Workspace, dict[str, Any]],
) -> None:
    workspace, users = world
    never = 2**31 - 1
    with TestClient(clocked_app(workspace, NOW)) as client:
        asked = client.get(f"/api/v1/objections/{never}", headers=_bearer(workspace, OUTSIDER))
    assert asked.status_code == 404
    assert _refused(workspace, DENIED, f"objection:{never}").detail["channel"] == "api"
    with client_for(clocked_app(workspace, NOW), users, OUTSIDER) as portal:
        assert portal.get(f"/objections/{never}").status_code == 404
    event = _refused(workspace, DENIED, f"objection:{never}")
    assert (event.actor, event.detail["channel"]) == (OUTSIDER, "portal")
