"""The demo's workflow cases, as a person finds them after `pubdata demo` (REQ-12, 15, 16, 17)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from pubdata.api.app import create_app
from pubdata.clock import Clock
from pubdata.db.models import AuditEvent, Notification, Objection, RequestItem, User
from pubdata.demo.build import build_demo
from pubdata.demo.cases import OBJECTION, REFUSAL
from pubdata.demo.world import PARK_CHECK_PURPOSE
from pubdata.workspace import Workspace

#: The cases are dated from the pinned clock ("filed two weeks ago"); the app reads the same one.
pytestmark = pytest.mark.clock


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, pinned_clock: Clock) -> Path:
    home = tmp_path_factory.mktemp("demo-cases") / "home"
    build_demo(home, scale=0.02, clock=pinned_clock)
    return home


@pytest.fixture(scope="module")
def accounts(home: Path) -> dict[str, Any]:
    facts: dict[str, Any] = json.loads((home / "demo-accounts.json").read_text("utf-8"))
    return facts


@pytest.fixture(scope="module")
def client(home: Path, pinned_clock: Clock) -> Iterator[TestClient]:
    with TestClient(create_app(Workspace.open(home, clock=pinned_clock))) as client:
        yield client


def _token(accounts: dict[str, Any], login: str) -> dict[str, str]:
    user = next(u for u in accounts["users"] if u["login"] == login)
    return {"Authorization": f"Bearer {user['token']}"}


def _query(client: TestClient, accounts: dict[str, Any], sql: str) -> tuple[Response, list[dict[str, Any]]]:
    """The union's query as JSON lines: every row, each an object."""
    body = {"sql": sql, "purpose": PARK_CHECK_PURPOSE, "application": "jx_park_workers", "format": "jsonl"}
    answer = client.post("/api/v1/query", json=body, headers=_token(accounts, "jx_zgh"))
    assert answer.status_code == 200, answer.text
    return answer, [json.loads(line) for line in answer.text.splitlines() if line.strip()]


def _items(home: Path) -> dict[int, RequestItem]:
    with Workspace.open(home).sessions() as s:
        return {i.id: i for i in s.scalars(select(RequestItem))}


@pytest.mark.req("REQ-16", "restricted-path")
@pytest.mark.req("REQ-17", "grant-terms")
def test_the_park_check_was_asked_checked_and_approved_into_the_grant_the_union_queries_with(
    home: Path, accounts: dict[str, Any], client: TestClient
) -> None:
    (grant,) = accounts["grants"]
    item = _items(home)[grant["request_item"]]
    assert item.state == "approved" and item.grant_id == grant["id"]
    with Workspace.open(home).sessions() as s:
        actions = list(
            s.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.target == f"request-item:{item.id}")
                .order_by(AuditEvent.id)
            )
        )
    assert actions == ["request.submit", "request.check", "request.approve"]
    sql = "SELECT id_number, division_code FROM hrss_social_insurance"
    _, rows = _query(client, accounts, sql)
    assert rows and all(r["division_code"].startswith("3304") for r in rows)
    assert all("*" in r["id_number"] for r in rows)


@pytest.mark.req("REQ-16", "refusal-reasons")
def test_the_refused_request_says_why(home: Path, accounts: dict[str, Any]) -> None:
    item = _items(home)[accounts["requests"]["refused"]]
    assert item.state == "refused" and item.reason == REFUSAL and item.grant_id is None


@pytest.mark.req("REQ-13", "escalation")
def test_the_overdue_request_was_escalated_to_the_data_bureau_once(
    home: Path, accounts: dict[str, Any]
) -> None:
    item = _items(home)[accounts["requests"]["overdue"]]
    assert item.state == "pending_decision" and item.escalated_at is not None
    with Workspace.open(home).sessions() as s:
        escalations = s.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "request.escalate", AuditEvent.target == f"request-item:{item.id}"
            )
        ).all()
        bureau = s.scalars(select(User).where(User.login == "zj_dsj")).one()
        told = s.scalars(select(Notification.kind).where(Notification.user_id == bureau.id)).all()
    assert len(escalations) == 1
    assert any("escalat" in kind for kind in told)


@pytest.mark.req("REQ-12", "disputed-mark")
def test_the_flagged_objection_marks_its_record_disputed_for_the_union(
    home: Path, accounts: dict[str, Any], client: TestClient
) -> None:
    with Workspace.open(home).sessions() as s:
        objection = s.get(Objection, accounts["objections"]["flagged"])
        assert objection is not None
        assert objection.state == "flagged" and objection.description == OBJECTION
        (record,) = objection.record_keys
    sql = "SELECT * FROM hrss_social_insurance"
    answer, rows = _query(client, accounts, sql)
    assert answer.headers["X-Pubdata-Disputed"] == "hrss_social_insurance=1"
    disputed = [r for r in rows if r["_disputed"]]
    assert len(disputed) == 1 and disputed[0]["insurance_type"] == record["insurance_type"]
    assert disputed[0]["id_number"] != record["id_number"]  # still masked
