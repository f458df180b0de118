"""The HTTP routes of responsible persons (REQ-25), incidents (REQ-28) and usage figures (REQ-23):
scopes, roles and errors as a client sees them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from pubdata.api.app import create_app
from pubdata.catalog.service import publish_entry
from pubdata.gateway.identity import issue_token
from pubdata.gateway.roles import Scope
from pubdata.workspace import Workspace
from workflow_world import SETTINGS, build_world


@pytest.fixture
def client(workspace: Workspace) -> Iterator[TestClient]:
    with workspace.sessions() as s, s.begin():
        build_world(s)
    with TestClient(create_app(workspace)) as test_client:
        yield test_client


def token(workspace: Workspace, login: str, *scopes: Scope) -> dict[str, str]:
    with workspace.sessions() as s, s.begin():
        issued = issue_token(s, login, scopes or (Scope.WORKFLOW,), 30, "admin", SETTINGS)
    return {"Authorization": f"Bearer {issued.token}"}


@pytest.mark.req("REQ-25", "named-officers")
def test_responsible_history_needs_catalog_read_and_changes_need_workflow(
    client: TestClient, workspace: Workspace
) -> None:
    url = "/api/v1/organisations/市公安局/responsible"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=token(workspace, "gat_clerk", Scope.QUERY)).status_code == 403
    reader = token(workspace, "gat_clerk", Scope.CATALOG_READ)
    body = client.get(url, headers=reader).json()
    assert body["head"] == "张局长" and [h["name"] for h in body["history"]] == ["张局长", "李安全"]
    change = {"duty": "head", "name": "刘局长", "contact": "0571-9"}
    assert client.put(url, json=change, headers=reader).status_code == 403  # no workflow scope
    assert client.put(url, json=change, headers=token(workspace, "gat_officer")).status_code == 403
    changed = client.put(url, json=change, headers=token(workspace, "dsj"))
    assert changed.status_code == 200, changed.text
    heads = [(h["name"], h["ended_at"] is None) for h in changed.json()["history"] if h["duty"] == "head"]
    assert heads == [("张局长", False), ("刘局长", True)]
    vacant = client.put(url, json={"duty": "security_officer"}, headers=token(workspace, "admin"))
    assert vacant.json()["security_officer"] is None
    assert client.get("/api/v1/organisations/nobody/responsible", headers=reader).status_code == 404


@pytest.mark.req("REQ-28", "record", "remediation")
def test_incident_routes_from_report_to_close(client: TestClient, workspace: Workspace) -> None:
    officer, dsj = token(workspace, "gat_officer"), token(workspace, "dsj")
    report = {
        "title": "接口越权",
        "category": "data_leak",
        "severity": "major",
        "occurred_at": "2026-03-02T08:00:00+08:00",
        "entry_codes": ["population"],
    }
    created = client.post("/api/v1/incidents", json=report, headers=officer)
    assert created.status_code == 201, created.text
    incident = created.json()
    assert incident["state"] == "reported" and incident["notified_at"] is not None
    bad = client.post("/api/v1/incidents", json={**report, "entry_codes": ["nothing"]}, headers=officer)
    assert bad.status_code == 400 and "nothing" in bad.json()["detail"]
    assert (
        client.post("/api/v1/incidents", json={**report, "category": "fire"}, headers=officer).status_code
        == 422
    )
    future = client.post("/api/v1/incidents", json={**report, "occurred_at": "2099-01-01T00:00:00+08:00"},
                         headers=officer)  # fmt: skip
    assert future.status_code == 400
    path = f"/api/v1/incidents/{incident['id']}"
    assert client.post(f"{path}/resolve", json={"note": "已修复"}, headers=dsj).status_code == 403
    assert client.post(f"{path}/resolve", json={"note": "已修复"}, headers=officer).status_code == 200
    assert client.post(f"{path}/resolve", json={"note": "再修"}, headers=officer).status_code == 409
    assert client.post(f"{path}/close", json={"note": "自己关"}, headers=officer).status_code == 403
    closed = client.post(f"{path}/close", json={"note": "结案"}, headers=dsj)
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    assert [u["state"] for u in closed.json()["updates"]] == ["reported", "resolved", "closed"]
    assert client.get(path, headers=token(workspace, "wjw_clerk")).status_code == 404
    assert client.get(path, headers=token(workspace, "auditor")).status_code == 200
    listed = client.get("/api/v1/incidents", params={"state": "closed"}, headers=dsj).json()
    assert [i["id"] for i in listed] == [incident["id"]]
    assert (
        client.get("/api/v1/incidents", headers=token(workspace, "dsj", Scope.CATALOG_READ)).status_code
        == 403
    )


@pytest.mark.req("REQ-23", "usage-measures")
def test_usage_is_public_for_published_entries_only(client: TestClient, workspace: Workspace) -> None:
    assert client.get("/api/v1/entries/population/usage").status_code == 404  # still a draft
    with workspace.sessions() as s, s.begin():
        publish_entry(s, "population", "gat_clerk", SETTINGS)
    answer = client.get("/api/v1/entries/population/usage", params={"since": "2026-01-01"})
    assert answer.status_code == 200
    assert answer.json()["days"] == [] and answer.json()["total"]["queries"] == 0
    wrong_way = client.get(
        "/api/v1/entries/population/usage", params={"since": "2026-02-01", "until": "2026-01-01"}
    )
    assert wrong_way.status_code == 400
