"""A step on an incident or objection the caller may not see is audited behind its 404 (REQ-40).

Moving another organisation's incident, or an objection one is no party to, answers exactly as an
id never given out — over the API, on the portal and on the command line — and each ask leaves one
``access.denied`` event naming who asked, through which face, for which id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gateway_support import demo_users
from objections_support import raise_on, served_record
from pubdata.cli.main import app as cli
from pubdata.clock import fixed_clock
from pubdata.db.models import AuditEvent
from pubdata.demo.build import build_demo
from pubdata.gateway.identity import issue_token
from pubdata.gateway.roles import Scope
from pubdata.workflow.refusals import DENIED
from pubdata.workspace import Workspace
from requests_support import NOW, SOCIAL
from web_support import client_for, clocked_app, csrf_of

#: A provider of another department: party to none of the incidents and objections below.
OUTSIDER = "zj_gat"
#: The social-insurance provider's account with a password; it reports the incident.
REPORTER = "zj_rst"
NEVER = 2**31 - 1
CLI_AT = ["--now", "2026-03-02T09:00:00+08:00"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, dict[str, Any], int, int]]:
    """The demo, its users, an incident of the provider's and an objection of the union's."""
    home = tmp_path_factory.mktemp("denied-steps") / "home"
    build_demo(home, scale=0.02, clock=fixed_clock(NOW))
    workspace = Workspace.open(home, clock=fixed_clock(NOW))
    report = {
        "title": "接口越权",
        "category": "data_leak",
        "severity": "major",
        "occurred_at": "2026-03-02T08:00:00+08:00",
        "entry_codes": [SOCIAL],
    }
    with TestClient(clocked_app(workspace, NOW)) as client:
        made = client.post("/api/v1/incidents", json=report, headers=_bearer(workspace, REPORTER))
    assert made.status_code == 201, made.text
    objection = raise_on(workspace, served_record(workspace, 0), now=NOW)
    yield workspace, demo_users(home), made.json()["id"], objection
    workspace.engine.dispose()


def _bearer(workspace: Workspace, login: str) -> dict[str, str]:
    with workspace.sessions() as session, session.begin():
        issued = issue_token(session, login, [Scope.WORKFLOW], 30, "test", workspace.settings.default)
    return {"Authorization": f"Bearer {issued.token}"}


def _denials(workspace: Workspace, kind: str, ident: int) -> list[AuditEvent]:
    with workspace.sessions() as session:
        return list(
            session.query(AuditEvent)
            .filter_by(action=DENIED, target=f"{kind}:{ident}", outcome="refused")
            .order_by(AuditEvent.id)
        )


def _asked_once(workspace: Workspace, kind: str, ident: int, before: int, channel: str) -> None:
    """One more `access.denied` for the id, by the outsider, through `channel` — and nothing else."""
    found = _denials(workspace, kind, ident)
    assert len(found) == before + 1, [e.detail for e in found]
    event = found[-1]
    assert (event.actor, event.detail["channel"], event.detail["kind"]) == (OUTSIDER, channel, kind)
    assert event.detail["code"] == "not_found" and event.detail["id"] == str(ident)


def _same(theirs: Any, unknown: Any, ident: int) -> None:
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == json.loads(unknown.text.replace(str(NEVER), str(ident)))


@pytest.mark.req("REQ-40", "api-calls")
@pytest.mark.parametrize("step", ["update", "resolve", "close"])
def test_a_step_on_another_organisations_incident_is_audited_behind_the_same_404(
    world: tuple[Workspace, dict[str, Any], int, int], step: str
) -> None:
    workspace, users, incident, _objection = world
    counts = {i: len(_denials(workspace, "incident", i)) for i in (incident, NEVER)}
    with TestClient(clocked_app(workspace, NOW)) as client:
        token = _bearer(workspace, OUTSIDER)
        theirs = client.post(f"/api/v1/incidents/{incident}/{step}", json={"note": "试探"}, headers=token)
        unknown = client.post(f"/api/v1/incidents/{NEVER}/{step}", json={"note": "试探"}, headers=token)
    _same(theirs, unknown, incident)
    for ident in (incident, NEVER):
        _asked_once(workspace, "incident", ident, counts[ident], "api")

    counts = {i: len(_denials(workspace, "incident", i)) for i in (incident, NEVER)}
    with client_for(clocked_app(workspace, NOW), users, OUTSIDER) as portal:
        token = csrf_of(portal.get("/incidents").text)
        for ident in (incident, NEVER):
            page = portal.post(
                f"/incidents/{ident}/{step}",
                data={"note": "试探", "csrf_token": token},
                follow_redirects=False,
            )
            assert page.status_code == 404 and "接口越权" not in page.text
            _asked_once(workspace, "incident", ident, counts[ident], "portal")


@pytest.mark.req("REQ-40", "api-calls")
@pytest.mark.parametrize(("move", "body"), [("accept", None), ("reject", {"reason": "试探"})])
def test_a_move_on_an_objection_of_others_is_audited_behind_the_same_404(
    world: tuple[Workspace, dict[str, Any], int, int], move: str, body: dict[str, str] | None
) -> None:
    workspace, users, _incident, objection = world
    counts = {i: len(_denials(workspace, "objection", i)) for i in (objection, NEVER)}
    with TestClient(clocked_app(workspace, NOW)) as client:
        token = _bearer(workspace, OUTSIDER)
        theirs = client.post(f"/api/v1/objections/{objection}/{move}", json=body, headers=token)
        unknown = client.post(f"/api/v1/objections/{NEVER}/{move}", json=body, headers=token)
    _same(theirs, unknown, objection)
    for ident in (objection, NEVER):
        _asked_once(workspace, "objection", ident, counts[ident], "api")
    with workspace.sessions() as session:  # the move was never tried: no refusal of it on record
        tried = session.query(AuditEvent).filter_by(target=f"objection:{objection}", actor=OUTSIDER)
        assert {e.action for e in tried} == {DENIED}

    counts = {i: len(_denials(workspace, "objection", i)) for i in (objection, NEVER)}
    with client_for(clocked_app(workspace, NOW), users, OUTSIDER) as portal:
        token = csrf_of(portal.get("/incidents").text)
        for ident in (objection, NEVER):
            page = portal.post(
                f"/objections/{ident}/{move}",
                data={"reason": "试探", "csrf_token": token},
                follow_redirects=False,
            )
            assert page.status_code == 404 and SOCIAL not in page.text
            _asked_once(workspace, "objection", ident, counts[ident], "portal")


def test_the_command_line_audits_an_ask_for_an_incident_or_objection_it_may_not_see(
    world: tuple[Workspace, dict[str, Any], int, int],
) -> None:
    workspace, _users, incident, objection = world
    home = ["--home", str(workspace.home), "--as", OUTSIDER]
    asks = [
        ("incident", incident, ["incidents", "show", str(incident)]),
        ("incident", incident, ["incidents", "resolve", str(incident), "--note", "试探"]),
        ("incident", NEVER, ["incidents", "update", str(NEVER), "--note", "试探"]),
        ("objection", objection, ["objections", "show", str(objection)]),
        ("objection", objection, ["objections", "archive", str(objection)]),
        ("objection", objection, ["objections", "correct", str(objection), "--version", "1"]),
        ("objection", NEVER, ["objections", "accept", str(NEVER)]),
    ]
    for kind, ident, args in asks:
        before = len(_denials(workspace, kind, ident))
        result = CliRunner().invoke(cli, [*CLI_AT, *args, *home])
        assert result.exit_code == 2, result.output
        assert "接口越权" not in result.output and SOCIAL not in result.output
        _asked_once(workspace, kind, ident, before, "cli")
