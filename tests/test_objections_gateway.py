"""Disputed records in gateway answers (REQ-12), end to end on the demo: a consumer objects to one
served record, it is flagged, every format marks exactly that record, an aggregate says so in a
header, the provider corrects it with a new version, and the mark is gone. Then the same over HTTP
for the objection routes and the rows route."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from python_calamine import CalamineWorkbook

from objections_support import (
    COMPETENT,
    CONSUMER,
    NOW,
    PARK_APP,
    PARK_PURPOSE,
    PROVIDER,
    SOCIAL,
    add_accounts,
    corrected_file,
    key_of,
    lift_objection_limits,
    move,
    principal,
    raise_on,
    served_record,
    state_of,
)
from pubdata.api.app import create_app
from pubdata.clock import fixed_clock
from pubdata.demo.build import build_demo
from pubdata.gateway.engine import SandboxedEngine
from pubdata.gateway.identity import issue_token
from pubdata.gateway.query import QueryResponse, run_query
from pubdata.gateway.roles import Scope
from pubdata.workflow import objections
from pubdata.workspace import Workspace

pytestmark = pytest.mark.req("REQ-12", "disputed-mark")
FORMATS = ("json", "jsonl", "csv", "arrow", "parquet", "xlsx")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    home = tmp_path_factory.mktemp("disputed") / "home"
    build_demo(home, scale=0.02, clock=fixed_clock(NOW))
    workspace = Workspace.open(home, clock=fixed_clock(NOW))
    add_accounts(workspace)
    lift_objection_limits(workspace)
    # The demo flags an objection of its own on this entry; the provider upholds it first, so that
    # the marks these tests count are their own.
    demo_objection = json.loads((home / "demo-accounts.json").read_text("utf-8"))["objections"]["flagged"]
    move(workspace, PROVIDER, "uphold", demo_objection, reason="核实无误，参保状态正确")
    yield workspace


@pytest.fixture(scope="module")
def engine(demo: Workspace) -> Iterator[SandboxedEngine]:
    with SandboxedEngine.for_workspace(demo) as opened:
        yield opened


def ask(demo: Workspace, engine: SandboxedEngine, sql: str, fmt: str = "json") -> tuple[QueryResponse, bytes]:
    answer = run_query(
        demo, principal(demo, CONSUMER), sql, PARK_PURPOSE, PARK_APP, fmt, engine=engine,
        max_rows=10_000 if fmt == "json" else None,
    )  # fmt: skip
    return answer, b"".join(answer.body)


def rows_of(fmt: str, body: bytes) -> list[dict[str, Any]]:
    """The answer's rows as dicts, whatever the format."""
    if fmt == "json":
        data = json.loads(body)
        names = [c["name"] for c in data["columns"]]
        return [dict(zip(names, row, strict=True)) for row in data["rows"]]
    if fmt == "jsonl":
        return [json.loads(line) for line in body.decode("utf-8").splitlines() if line.strip()]
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    if fmt == "arrow":
        return pa.ipc.open_stream(body).read_all().to_pylist()
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(body)).to_pylist()
    lines = CalamineWorkbook.from_filelike(io.BytesIO(body)).get_sheet_by_index(0).to_python()
    return [dict(zip(lines[0], line, strict=True)) for line in lines[1:]]


def truthy(value: Any) -> bool:
    return value is True or str(value).lower() in {"true", "1"}


@pytest.fixture(scope="module")
def flagged(demo: Workspace) -> dict[str, Any]:
    """One served record under an accepted, flagged objection, with the objection's number."""
    record = served_record(demo, 3)
    objection_id = raise_on(demo, record)
    move(demo, COMPETENT, "accept", objection_id)
    return {"record": record, "id": objection_id}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_marks_exactly_the_flagged_record(
    demo: Workspace, engine: SandboxedEngine, flagged: dict[str, Any], fmt: str
) -> None:
    answer, body = ask(demo, engine, "SELECT * FROM hrss_social_insurance", fmt)
    rows = rows_of(fmt, body)
    assert rows and all("_disputed" in r for r in rows)
    marked = [r for r in rows if truthy(r["_disputed"])]
    assert len(marked) == 1
    record = flagged["record"]
    assert marked[0]["insurance_type"] == record["insurance_type"]
    assert str(marked[0]["id_number"])[:6] == record["id_number"][:6]
    assert str(marked[0]["id_number"]) != record["id_number"]  # still masked: the mark reveals no key
    assert answer.headers["X-Pubdata-Disputed"] == f"{SOCIAL}=1"


def test_listed_columns_get_the_mark_and_an_aggregate_gets_the_header(
    demo: Workspace, engine: SandboxedEngine, flagged: dict[str, Any]
) -> None:
    _answer, body = ask(demo, engine, "SELECT name, status FROM hrss_social_insurance")
    data = json.loads(body)
    assert [c["name"] for c in data["columns"]] == ["name", "status", "_disputed"]
    assert sum(1 for row in data["rows"] if row[2]) == 1
    answer, body = ask(
        demo, engine, "SELECT status, count(*) AS n FROM hrss_social_insurance GROUP BY status"
    )
    data = json.loads(body)
    assert [c["name"] for c in data["columns"]] == ["status", "n"]
    assert answer.headers["X-Pubdata-Disputed"] == f"{SOCIAL}=1"
    assert data["disputed"] == {SOCIAL: 1}


def test_the_mark_cannot_be_forged(demo: Workspace, engine: SandboxedEngine, flagged: dict[str, Any]) -> None:
    from pubdata.gateway.policy_types import PolicyViolation

    with pytest.raises(PolicyViolation, match="_disputed"):
        ask(demo, engine, "SELECT name, false AS _disputed FROM hrss_social_insurance")


def test_a_correction_by_a_new_version_removes_the_mark(
    demo: Workspace, engine: SandboxedEngine, flagged: dict[str, Any], tmp_path: Path
) -> None:
    record, objection_id = flagged["record"], flagged["id"]
    path = corrected_file(demo, record, tmp_path)
    done = objections.correct(demo, principal(demo, PROVIDER), objection_id, file=path, now=NOW)
    assert done.state == "unflagged" and done.corrected_version is not None
    answer, body = ask(demo, engine, "SELECT * FROM hrss_social_insurance", "jsonl")
    rows = rows_of("jsonl", body)
    assert rows and all("_disputed" not in r for r in rows)
    assert "X-Pubdata-Disputed" not in answer.headers
    fixed = [r for r in rows if r["insurance_type"] == record["insurance_type"] and r["status"] == "暂停参保"]
    assert fixed
    with demo.sessions() as session:
        actions = [e["action"] for e in _history(session, objection_id)]
    assert actions[-2:] == ["objection.correct", "objection.unflag"]


def _history(session: Any, objection_id: int) -> list[dict[str, Any]]:
    from pubdata.workflow.objection_views import event_facts, history

    return [event_facts(e) for e in history(session, objection_id)]


# --- over HTTP ------------------------------------------------------------------------------------


def _token(
    demo: Workspace, login: str, scopes: tuple[Scope, ...] = (Scope.WORKFLOW, Scope.QUERY)
) -> dict[str, str]:
    with demo.sessions() as session, session.begin():
        issued = issue_token(session, login, scopes, 30, "test", demo.settings.default)
    return {"Authorization": f"Bearer {issued.token}"}


def test_objection_routes(demo: Workspace) -> None:
    client = TestClient(create_app(demo))
    consumer, competent, provider = (_token(demo, u) for u in (CONSUMER, COMPETENT, PROVIDER))
    record = served_record(demo, 5)
    body = {"entry": SOCIAL, "records": [key_of(record)], "description": "姓名有误"}
    assert client.post("/api/v1/objections", json=body).status_code == 401
    no_scope = _token(demo, CONSUMER, (Scope.QUERY,))
    assert client.post("/api/v1/objections", json=body, headers=no_scope).status_code == 403
    bad = {**body, "records": [{"id_number": record["id_number"]}]}
    assert client.post("/api/v1/objections", json=bad, headers=consumer).status_code == 400
    raised = client.post("/api/v1/objections", json=body, headers=consumer)
    assert raised.status_code == 201, raised.text
    objection_id = raised.json()["id"]
    assert raised.json()["state"]["value"] == "submitted" and raised.json()["due_at"]
    mine = client.get("/api/v1/objections", params={"view": "mine"}, headers=consumer).json()
    assert objection_id in [o["id"] for o in mine]
    waiting = client.get("/api/v1/objections", params={"view": "waiting"}, headers=competent).json()
    assert objection_id in [o["id"] for o in waiting]
    assert client.post(f"/api/v1/objections/{objection_id}/accept", headers=provider).status_code == 403
    accepted = client.post(f"/api/v1/objections/{objection_id}/accept", headers=competent)
    assert accepted.status_code == 200 and accepted.json()["state"]["value"] == "flagged"
    assert client.post(f"/api/v1/objections/{objection_id}/accept", headers=competent).status_code == 409
    rows = client.get(
        f"/api/v1/entries/{SOCIAL}/rows",
        params={"purpose": PARK_PURPOSE, "application": PARK_APP, "insurance_type": record["insurance_type"]},
        headers=consumer,
    )
    assert rows.status_code == 200 and "_disputed" in [c["name"] for c in rows.json()["columns"]]
    assert rows.headers["X-Pubdata-Disputed"].startswith(f"{SOCIAL}=")
    reason = {"reason": "经核实姓名正确"}
    upheld = client.post(f"/api/v1/objections/{objection_id}/verify-upheld", json=reason, headers=provider)
    assert upheld.status_code == 200 and upheld.json()["state"]["value"] == "unflagged"
    shown = client.get(f"/api/v1/objections/{objection_id}", headers=consumer).json()
    assert [e["action"] for e in shown["history"] if e["outcome"] == "ok"] == [
        "objection.raise", "objection.accept", "objection.flag", "objection.uphold", "objection.unflag",
    ]  # fmt: skip
    refused = [(e["actor"], e["action"]) for e in shown["history"] if e["outcome"] == "refused"]
    assert refused == [(PROVIDER, "objection.accept"), (COMPETENT, "objection.accept")]
    stranger = _token(demo, "gat_consumer")
    assert client.get(f"/api/v1/objections/{objection_id}", headers=stranger).status_code == 404
    archived = client.post(f"/api/v1/objections/{objection_id}/archive", headers=competent)
    assert archived.json()["state"]["value"] == "archived"
    assert state_of(demo, objection_id) == "archived"
