"""The request workflow on the demo province, end to end: a trade union asks for social-insurance
rows, the competent department checks, the provider approves narrower, the union's queries run under
exactly that grant, and after its end they are refused (REQ-15, REQ-16, REQ-17)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from pubdata import audit
from pubdata.clock import fixed_clock
from pubdata.db.models import Grant, Notification, RequestItem
from pubdata.demo.build import build_demo
from pubdata.gateway.access import AccessDenied
from pubdata.gateway.engine import SandboxedEngine
from pubdata.gateway.grants import list_grants, revoke_grant
from pubdata.gateway.query import run_query
from pubdata.gateway.roles import Role
from pubdata.workflow.decisions import Decision, act
from pubdata.workflow.escalation import expire_items
from pubdata.workflow.request_states import Action
from pubdata.workflow.request_views import history, visible_request
from pubdata.workspace import Workspace
from requests_support import (
    COMPETENT,
    CONSUMER,
    HRSS,
    NOW,
    PARK_APP,
    PROVIDER,
    SOCIAL,
    SOCIAL_FIELDS,
    ensure_user,
    file_request,
    principal,
)

MASKED_ID = re.compile(r"^\d{6}\*{8}\d{3}[\dX]$")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    home: Path = tmp_path_factory.mktemp("requests") / "home"
    build_demo(home, scale=0.02, clock=fixed_clock(NOW))
    workspace = Workspace.open(home, clock=fixed_clock(NOW))
    ensure_user(workspace, PROVIDER, HRSS, Role.PROVIDER)
    # The demo shares social insurance with the union directly; the workflow's grant must be the one.
    with workspace.sessions() as session, session.begin():
        for grant in list_grants(session, entry_code=SOCIAL, application=PARK_APP):
            revoke_grant(session, grant.id, actor="test", reason="replaced by the request workflow")
    return workspace


def _query(workspace: Workspace, purpose: str, now: dt.datetime) -> dict[str, object]:
    with SandboxedEngine.for_workspace(workspace) as engine:
        answer = run_query(
            workspace, principal(workspace, CONSUMER), f"SELECT * FROM {SOCIAL}", purpose, PARK_APP, "json",
            engine=engine, now=now, max_rows=10_000,
        )  # fmt: skip
        body: dict[str, object] = json.loads(b"".join(answer.body))
    return body


@pytest.mark.req("REQ-15", "request-record")
@pytest.mark.req("REQ-16", "restricted-path")
@pytest.mark.req("REQ-17", "grant-terms")
def test_check_then_narrower_approval_is_the_grant_queries_run_under(workspace: Workspace) -> None:
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
        workspace.sessions, principal(workspace, COMPETENT), item_id, Action.CHECK, Decision(),
        workspace.settings, NOW + dt.timedelta(hours=2),
    )  # fmt: skip
    assert checked["state"] == "pending_decision" and checked["step"] == "decide"
    assert checked["working_days_left"] == 5
    approved = act(
        workspace.sessions, principal(workspace, PROVIDER), item_id, Action.APPROVE,
        Decision(
            fields=["id_number", "insurance_type", "status", "division_code"],
            deid={"id_number": "mask_id_number"},
            valid_until=dt.datetime(2026, 5, 31, 15, 59, 59, tzinfo=dt.UTC),
        ),
        workspace.settings, NOW + dt.timedelta(days=1),
    )  # fmt: skip
    assert approved["state"] == "approved" and approved["grant_id"] is not None

    purpose = "园区职工参保核查（申请）"
    body = _query(workspace, purpose, NOW + dt.timedelta(days=2))
    columns = body["columns"]
    assert isinstance(columns, list)
    # The approved fields only, and the `_disputed` mark of the demo's flagged objection on this entry.
    names = [c["name"] for c in columns]
    assert names == ["id_number", "insurance_type", "status", "division_code", "_disputed"]
    rows = body["rows"]
    assert isinstance(rows, list) and rows
    assert all(MASKED_ID.match(r[0]) for r in rows)
    assert all(str(r[3]).startswith("3304") for r in rows)

    with workspace.sessions() as session:
        grant = session.get(Grant, approved["grant_id"])
        assert grant is not None and grant.created_by == PROVIDER and grant.deid["id_number"]["function"]
        events = [
            e.action
            for e in history(session, visible_request(session, principal(workspace, PROVIDER), request_id))
        ]
        assert events == ["request.create", "request.submit", "request.check", "request.approve"]
        told = session.query(Notification).filter(Notification.kind == "request.approve").count()
        assert told >= 1

    after = dt.datetime(2026, 6, 2, tzinfo=dt.UTC)
    assert expire_items(workspace, after) == 1
    assert expire_items(workspace, after) == 0
    with workspace.sessions() as session:
        item = session.get(RequestItem, item_id)
        assert item is not None and item.state == "expired"
        assert audit.list_events(session, "request.expire")[-1].target == f"request-item:{item_id}"
    with pytest.raises(AccessDenied, match="expired"):
        _query(workspace, purpose, after)
