"""A not-shared entry is shared only through the competent department's coordination (REQ-14, REQ-16).

The union disputes the outpatient entry's not-shared class with a reason; the data bureau checks the
request, coordinates, and approves it narrowed and masked; the health commission, its provider,
countersigns (会签). The grant names that coordination, and it
is the only kind of grant a not-shared entry honours: a grant made directly is refused, and a grant
made while an entry was restricted stops working the moment the entry is reclassified not shared.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pubdata.api.app import create_app
from pubdata.catalog.classes import ShareClass
from pubdata.clock import Clock
from pubdata.db.models import CatalogEntry, Grant, RequestItem
from pubdata.demo.build import build_demo
from pubdata.demo.world import PARK_CHECK_PURPOSE
from pubdata.errors import RuleViolation
from pubdata.gateway.grants import grant_access
from pubdata.gateway.identity import create_user, find_user
from pubdata.gateway.roles import Principal, Role, Scope
from pubdata.workflow import requests
from pubdata.workflow.decisions import Decision, act
from pubdata.workflow.request_states import Action
from pubdata.workspace import Workspace

OUTPATIENT = "wjw_outpatient_visits"
#: Requests and grants run from the pinned clock the demo was built at.
pytestmark = pytest.mark.clock
PURPOSE = "困难职工医疗互助救助核查"
DISPUTE = "职工医疗互助救助须核实门诊费用，《工会法》第六条赋予工会维护职工权益的职责"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, pinned_clock: Clock) -> Iterator[Workspace]:
    home = tmp_path_factory.mktemp("coordination") / "home"
    build_demo(home, scale=0.02, clock=pinned_clock)
    workspace = Workspace.open(home, clock=pinned_clock)
    yield workspace
    workspace.engine.dispose()


@pytest.fixture(scope="module")
def client(workspace: Workspace) -> Iterator[TestClient]:
    with TestClient(create_app(workspace)) as client:
        yield client


def _principal(workspace: Workspace, login: str) -> Principal:
    with workspace.sessions() as s:
        user = find_user(s, login)
        _ = user.role_rows, user.organisation
        s.expunge_all()
    return Principal(user, user.organisation, user.roles, frozenset(Scope))


def _query(workspace: Workspace, client: TestClient, sql: str, purpose: str) -> Any:
    users = json.loads((workspace.home / "demo-accounts.json").read_text("utf-8"))["users"]
    token = next(u["token"] for u in users if u["login"] == "jx_zgh")
    body = {"sql": sql, "purpose": purpose, "application": "jx_park_workers", "format": "jsonl"}
    return client.post("/api/v1/query", json=body, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.req("REQ-16", "coordination", "not-shared-path")
def test_a_coordinated_approval_opens_a_not_shared_entry_narrowed_and_masked(
    workspace: Workspace, client: TestClient
) -> None:
    sql = f"SELECT id_number, hospital, cost FROM {OUTPATIENT}"
    assert _query(workspace, client, sql, PURPOSE).status_code == 403
    now = workspace.clock()
    union = _principal(workspace, "jx_zgh")
    with workspace.sessions() as s, s.begin():
        request = requests.create_request(
            s, union, application="jx_park_workers", legal_basis="《中华人民共和国工会法》第六条",
            purpose=PURPOSE, scenario="职工医疗互助", valid_from=now, valid_until=now + dt.timedelta(days=30),
        )  # fmt: skip
        with pytest.raises(RuleViolation, match="only through a dispute"):
            item = requests.add_item(s, union, request.id, OUTPATIENT, ["id_number", "hospital", "cost"])
            requests.submit(s, union, request.id, workspace.settings, now)
    with workspace.sessions() as s, s.begin():
        request = requests.create_request(
            s, union, application="jx_park_workers", legal_basis="《中华人民共和国工会法》第六条",
            purpose=PURPOSE, scenario="职工医疗互助", valid_from=now, valid_until=now + dt.timedelta(days=30),
        )  # fmt: skip
        item = requests.add_item(
            s, union, request.id, OUTPATIENT, ["id_number", "hospital", "cost", "diagnosis_code"],
            dispute_reason=DISPUTE,
        )  # fmt: skip
        requests.submit(s, union, request.id, workspace.settings, now)
        item_id = item.id
    bureau = _principal(workspace, "zj_dsj")
    act(workspace.sessions, bureau, item_id, Action.CHECK, Decision(), workspace.settings, now)
    with workspace.sessions() as s:
        assert s.get(RequestItem, item_id).state == "in_coordination"  # type: ignore[union-attr]
    decision = Decision(fields=["id_number", "hospital", "cost"], deid={"id_number": "mask_id_number"})
    act(workspace.sessions, bureau, item_id, Action.COORDINATE_APPROVE, decision, workspace.settings, now)
    assert _query(workspace, client, sql, PURPOSE).status_code == 403  # not before the countersignature
    with workspace.sessions() as s, s.begin():
        create_user(
            s, "wjw_staff", roles=[Role.PROVIDER], organisation="省卫健委", password=None, actor="test"
        )
    health = _principal(workspace, "wjw_staff")
    act(workspace.sessions, health, item_id, Action.CONSENT, Decision(), workspace.settings, now)
    with workspace.sessions() as s:
        item_row = s.get(RequestItem, item_id)
        assert item_row is not None and item_row.state == "approved"
        grant = s.get(Grant, item_row.grant_id)
        assert grant is not None and grant.coordination == f"request-item:{item_id}"
    answer = _query(workspace, client, sql, PURPOSE)
    assert answer.status_code == 200, answer.text
    rows = [json.loads(line) for line in answer.text.splitlines()]
    assert rows and all("*" in r["id_number"] for r in rows)
    narrowed = _query(workspace, client, f"SELECT diagnosis_code FROM {OUTPATIENT}", PURPOSE)
    assert narrowed.status_code == 400 and "diagnosis_code" in narrowed.json()["detail"]


@pytest.mark.req("REQ-14", "sharing-classes")
def test_a_not_shared_entry_refuses_a_direct_grant_and_a_reclassified_entry_drops_old_grants(
    workspace: Workspace, client: TestClient
) -> None:
    now = workspace.clock()
    with workspace.sessions() as s, s.begin(), pytest.raises(RuleViolation, match="not shared"):
        grant_access(
            s, organisation="嘉兴市总工会", application="jx_park_workers", entry_code=OUTPATIENT,
            fields=["hospital"], purpose=PURPOSE, legal_basis="x", valid_from=now,
            valid_until=now + dt.timedelta(days=3), actor="test", settings=workspace.settings.default,
            now=now,
        )  # fmt: skip
    sql = "SELECT name FROM hrss_social_insurance LIMIT 1"
    assert _query(workspace, client, sql, PARK_CHECK_PURPOSE).status_code == 200
    with workspace.sessions() as s, s.begin():
        entry = s.scalars(select(CatalogEntry).where(CatalogEntry.code == "hrss_social_insurance")).one()
        entry.share_class = ShareClass.NOT_SHARED
    try:
        refused = _query(workspace, client, sql, PARK_CHECK_PURPOSE)
        assert refused.status_code == 403 and "not shared" in refused.json()["detail"]
    finally:
        with workspace.sessions() as s, s.begin():
            entry = s.scalars(select(CatalogEntry).where(CatalogEntry.code == "hrss_social_insurance")).one()
            entry.share_class = ShareClass.RESTRICTED
    assert _query(workspace, client, sql, PARK_CHECK_PURPOSE).status_code == 200
