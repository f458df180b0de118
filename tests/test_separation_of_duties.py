"""Separation of duties (四眼原则) in the sharing workflow, on the demo province at a pinned instant.

A person of 省大数据局 holding both the competent-department and the consumer role once asked for
the health commission's not-shared outpatient records (L4), then checked, coordinated and approved
the ask alone, raw identity numbers and names included; a colleague of the same bureau could do the
same. Now nobody decides on their own organisation's request, a coordinated approval of not-shared
data waits for a countersignature (the provider's, or a second competent person's when the setting
says so) and names both people, and `pubdata users add` warns about — or refuses — the role pairs
that let one person ask and decide.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import tomli_w
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from gateway_support import demo_users
from pubdata import audit
from pubdata.api.app import create_app
from pubdata.cli.main import app
from pubdata.clock import Clock
from pubdata.db.models import AuditEvent, Grant, Notification, RequestItem, User
from pubdata.demo.build import build_demo
from pubdata.errors import InputError, PubdataError
from pubdata.gateway.identity import create_application, create_user, find_user, issue_token
from pubdata.gateway.roles import NotAuthorised, Principal, Role, Scope
from pubdata.settings import SettingsFile
from pubdata.workflow import request_views, requests
from pubdata.workflow.decisions import Decision, act
from pubdata.workflow.duties import SeparationOfDuties, check_user_roles, role_conflicts
from pubdata.workflow.request_states import Action, ItemState
from pubdata.workspace import Workspace
from requests_support import HRSS, ensure_user
from web_support import client_for, clocked_app, csrf_of

pytestmark = pytest.mark.clock
OUTPATIENT = "wjw_outpatient_visits"
ASKED = ["id_number", "name", "hospital", "cost"]
DISPUTE = "职工医疗互助救助须核实门诊费用"
#: The person of the incident: a data-bureau login that may ask (consumer) and decide (competent).
DUAL, COLLEAGUE, SECOND, HEALTH, UNION = "dsj_dual", "zj_dsj", "dsj_second", "wjw_staff", "jx_zgh"
PASSWORD = "Wjw-Dsj-Test-Password-2026"
runner = CliRunner()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, pinned_clock: Clock) -> Iterator[Workspace]:
    home = tmp_path_factory.mktemp("duties") / "home"
    build_demo(home, scale=0.02, clock=pinned_clock)
    workspace = Workspace.open(home, clock=pinned_clock)
    with workspace.sessions() as s, s.begin():
        for login, org, roles in (
            (DUAL, "省大数据局", [Role.COMPETENT_DEPARTMENT, Role.CONSUMER]),
            (SECOND, "省大数据局", [Role.COMPETENT_DEPARTMENT]),
            (HEALTH, "省卫健委", [Role.PROVIDER]),
        ):
            create_user(s, login, roles=roles, organisation=org, password=PASSWORD, actor="test")
        create_application(
            s, "dsj_analysis", name="数据分析", organisation="省大数据局", purpose="医疗救助统计",
            system_owner="周明远", actor="test",
        )  # fmt: skip
    yield workspace
    workspace.engine.dispose()


def _principal(workspace: Workspace, login: str) -> Principal:
    with workspace.sessions() as s:
        user = find_user(s, login)
        _ = user.role_rows, user.organisation
        s.expunge_all()
    return Principal(user, user.organisation, user.roles, frozenset(Scope))


def _ask(workspace: Workspace, login: str, application: str) -> int:
    """`login`'s organisation asks for the outpatient records through a dispute; returns the item."""
    who, now = _principal(workspace, login), workspace.clock()
    with workspace.sessions() as s, s.begin():
        request = requests.create_request(
            s, who, application=application, legal_basis="《浙江省公共数据条例》第二十一条",
            purpose="困难职工医疗救助核查", scenario="医疗救助", valid_from=now,
            valid_until=now + dt.timedelta(days=30),
        )  # fmt: skip
        item = requests.add_item(s, who, request.id, OUTPATIENT, ASKED, dispute_reason=DISPUTE)
        requests.submit(s, who, request.id, workspace.settings, now)
        return item.id


def _act(
    workspace: Workspace,
    login: str,
    item_id: int,
    action: Action,
    decision: Decision | None = None,
    settings: SettingsFile | None = None,
) -> dict[str, Any]:
    return act(
        workspace.sessions, _principal(workspace, login), item_id, action, decision or Decision(),
        settings or workspace.settings, workspace.clock(),
    )  # fmt: skip


def _item(workspace: Workspace, item_id: int) -> RequestItem:
    with workspace.sessions() as s:
        item = s.get(RequestItem, item_id)
        assert item is not None
        return item


def _last(workspace: Workspace, action: Action) -> AuditEvent:
    with workspace.sessions() as s:
        return audit.list_events(s, f"request.{action}", limit=1)[-1]


def _second_competent(workspace: Workspace) -> SettingsFile:
    return SettingsFile(replace(workspace.settings.default, not_shared_consent="second_competent"), {})


def test_the_bureau_cannot_check_or_coordinate_its_own_request(workspace: Workspace) -> None:
    item_id = _ask(workspace, DUAL, "dsj_analysis")
    for login in (DUAL, COLLEAGUE):  # the asker, then a colleague of the same bureau
        with pytest.raises(SeparationOfDuties) as refused:
            _act(workspace, login, item_id, Action.CHECK)
        assert str(refused.value).startswith(f"{login} may not check (审核通过) request item {item_id}: ")
        assert "浙江省大数据发展管理局, the caller's own organisation" in str(refused.value)
        event = _last(workspace, Action.CHECK)
        assert (event.actor, event.outcome, event.target) == (login, "refused", f"request-item:{item_id}")
        assert event.detail["rule"] == "separation-of-duties"
    with workspace.sessions() as s, s.begin():  # as if someone had checked it: coordination is refused too
        s.execute(
            update(RequestItem).where(RequestItem.id == item_id).values(state=ItemState.IN_COORDINATION)
        )
    decision = Decision(fields=ASKED, deid={"id_number": "raw", "name": "raw"})
    with pytest.raises(SeparationOfDuties):
        _act(workspace, COLLEAGUE, item_id, Action.COORDINATE_APPROVE, decision)
    with pytest.raises(SeparationOfDuties):
        _act(workspace, DUAL, item_id, Action.COORDINATE_UPHOLD, Decision(reason="维持"))
    item = _item(workspace, item_id)
    assert item.state == ItemState.IN_COORDINATION and item.grant_id is None
    with workspace.sessions() as s:  # the bureau's staff were never asked to check their own ask
        bureau = [u.id for u in s.scalars(select(User).where(User.login.in_([DUAL, COLLEAGUE, SECOND])))]
        told = s.scalars(select(Notification).where(Notification.user_id.in_(bureau))).all()
        assert not [n for n in told if f"/requests/{item.request_id}" == n.link]


def test_the_api_refuses_a_decision_on_the_own_organisations_request_with_403(workspace: Workspace) -> None:
    item_id = _ask(workspace, DUAL, "dsj_analysis")
    request_id = _item(workspace, item_id).request_id
    with workspace.sessions() as s, s.begin():
        issued = issue_token(
            s, DUAL, [Scope.WORKFLOW], 7, "test", workspace.settings.default, now=workspace.clock()
        )
    with TestClient(create_app(workspace)) as client:
        answer = client.post(
            f"/api/v1/requests/{request_id}/items/{item_id}/check",
            json={},
            headers={"Authorization": f"Bearer {issued.token}"},
        )
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"] == "forbidden"
    assert "no one decides on a request of their own organisation" in answer.json()["detail"]
    assert _item(workspace, item_id).state == ItemState.PENDING_CHECK
    with workspace.sessions() as s:
        target = f"request-item:{item_id}"
        refused = [e for e in audit.list_events(s, "request.check") if e.target == target]
    assert [(e.actor, e.outcome) for e in refused if e.detail.get("rule") == "separation-of-duties"] == [
        (DUAL, "refused")
    ]


def test_a_coordinated_approval_of_not_shared_data_waits_for_the_provider(workspace: Workspace) -> None:
    item_id = _ask(workspace, UNION, "jx_park_workers")
    _act(workspace, COLLEAGUE, item_id, Action.CHECK)
    narrowed = Decision(fields=["id_number", "hospital", "cost"], deid={"id_number": "mask_id_number"})
    waiting = _act(workspace, COLLEAGUE, item_id, Action.COORDINATE_APPROVE, narrowed)
    assert waiting["state"] == "pending_consent" and waiting["state_label"] == "待会签"
    assert waiting["grant_id"] is None and waiting["step"] == "decide"
    proposed = _last(workspace, Action.COORDINATE_APPROVE).detail
    assert proposed["countersigner"] == "provider" and proposed["proposed"]["fields"] == narrowed.fields
    with workspace.sessions() as s:  # the health commission is told; the coordinator is not
        health = find_user(s, HEALTH)
        assert s.scalars(select(Notification).where(Notification.user_id == health.id)).all()
    for login in (COLLEAGUE, SECOND):  # not the provider: the default asks for the provider's consent
        with pytest.raises(NotAuthorised, match="only 公共数据提供单位 staff of 浙江省卫生健康委员会 may"):
            _act(workspace, login, item_id, Action.CONSENT)
    with pytest.raises(InputError, match="takes the coordinated terms as they are"):
        _act(workspace, HEALTH, item_id, Action.CONSENT, Decision(fields=["hospital"]))
    done = _act(workspace, HEALTH, item_id, Action.CONSENT, Decision(reason="同意按协调意见提供"))
    assert done["state"] == "approved" and done["decided_by"] == HEALTH
    event = _last(workspace, Action.CONSENT)
    assert event.outcome == "ok" and event.actor == HEALTH
    assert (event.detail["coordinated_by"], event.detail["countersigned_by"]) == (COLLEAGUE, HEALTH)
    assert event.detail["approvers"] == [COLLEAGUE, HEALTH]
    with workspace.sessions() as s:
        grant = s.get(Grant, done["grant_id"])
        assert grant is not None and grant.coordination == f"request-item:{item_id}"
        assert sorted(grant.fields) == ["cost", "hospital", "id_number"]
        assert grant.deid["id_number"]["function"] == "mask_id_number"
        request = request_views.visible_request(
            s, _principal(workspace, UNION), _item(workspace, item_id).request_id
        )
        history = [(e.actor, e.action) for e in request_views.history(s, request)]
    assert (COLLEAGUE, "request.coordinate-approve") in history and (HEALTH, "request.consent") in history


def test_the_provider_may_withhold_its_consent(workspace: Workspace) -> None:
    item_id = _ask(workspace, UNION, "jx_park_workers")
    _act(workspace, COLLEAGUE, item_id, Action.CHECK)
    _act(workspace, COLLEAGUE, item_id, Action.COORDINATE_APPROVE)
    with pytest.raises(InputError, match="needs a reason"):
        _act(workspace, HEALTH, item_id, Action.WITHHOLD_CONSENT)
    closed = _act(workspace, HEALTH, item_id, Action.WITHHOLD_CONSENT, Decision(reason="诊疗信息不宜提供"))
    assert closed["state"] == "closed" and closed["grant_id"] is None


def test_with_the_setting_a_second_competent_person_countersigns(workspace: Workspace) -> None:
    settings = _second_competent(workspace)
    item_id = _ask(workspace, UNION, "jx_park_workers")
    _act(workspace, COLLEAGUE, item_id, Action.CHECK, settings=settings)
    _act(workspace, COLLEAGUE, item_id, Action.COORDINATE_APPROVE, settings=settings)
    assert _last(workspace, Action.COORDINATE_APPROVE).detail["countersigner"] == "second_competent"
    with pytest.raises(SeparationOfDuties, match="a countersignature needs a second person"):
        _act(workspace, COLLEAGUE, item_id, Action.CONSENT, settings=settings)
    refused = _last(workspace, Action.CONSENT)
    assert (refused.actor, refused.outcome, refused.detail["rule"]) == (
        COLLEAGUE,
        "refused",
        "separation-of-duties",
    )
    with pytest.raises(NotAuthorised, match="only staff of a competent department"):
        _act(workspace, HEALTH, item_id, Action.CONSENT, settings=settings)
    done = _act(workspace, SECOND, item_id, Action.CONSENT, settings=settings)
    assert done["state"] == "approved" and done["grant_id"] is not None
    assert _last(workspace, Action.CONSENT).detail["approvers"] == [COLLEAGUE, SECOND]


def test_a_restricted_entry_settled_in_coordination_is_granted_at_once(workspace: Workspace) -> None:
    """Only not-shared data waits for a countersignature: the provider already spoke on restricted data."""
    ensure_user(workspace, "hrss_staff", HRSS, Role.PROVIDER)
    who, now = _principal(workspace, UNION), workspace.clock()
    with workspace.sessions() as s, s.begin():
        request = requests.create_request(
            s, who, application="jx_park_workers", legal_basis="《中华人民共和国工会法》第六条",
            purpose="园区职工参保核查", scenario="参保核查", valid_from=now,
            valid_until=now + dt.timedelta(days=30),
        )  # fmt: skip
        item_id = requests.add_item(s, who, request.id, "hrss_social_insurance", ["status"]).id
        requests.submit(s, who, request.id, workspace.settings, now)
    _act(workspace, COLLEAGUE, item_id, Action.CHECK)
    _act(workspace, "hrss_staff", item_id, Action.REFUSE, Decision(reason="用途不符"))
    _act(workspace, UNION, item_id, Action.DISPUTE, Decision(reason="工会法赋予维护职工权益的职责"))
    assert _act(workspace, COLLEAGUE, item_id, Action.COORDINATE_APPROVE)["state"] == "approved"


def test_the_portal_offers_no_decision_on_the_own_organisations_request(workspace: Workspace) -> None:
    own = _ask(workspace, DUAL, "dsj_analysis")
    theirs = _ask(workspace, UNION, "jx_park_workers")
    _act(workspace, COLLEAGUE, theirs, Action.CHECK)
    _act(workspace, COLLEAGUE, theirs, Action.COORDINATE_APPROVE)
    users = demo_users(workspace.home) | {login: {"password": PASSWORD} for login in (DUAL, HEALTH)}
    app = clocked_app(workspace, workspace.clock())
    own_page = f"/requests/{_item(workspace, own).request_id}"
    for login in (DUAL, COLLEAGUE):
        page = client_for(app, users, login).get(own_page)
        assert page.status_code == 200 and "待审核" in page.text
        assert 'data-action="check"' not in page.text and 'data-action="return"' not in page.text
    bureau = client_for(app, users, COLLEAGUE)
    forced = bureau.post(
        f"{own_page}/items/{own}/check", data={"csrf_token": csrf_of(bureau.get(own_page).text)}
    )
    assert forced.status_code == 403 and "任何人不得审批本单位的申请" in forced.text
    theirs_page = f"/requests/{_item(workspace, theirs).request_id}"
    health = client_for(app, users, HEALTH)
    page = health.get(theirs_page)
    assert page.status_code == 200 and "待会签" in page.text and "会签同意" in page.text
    assert 'data-action="consent"' in page.text and 'data-action="withhold-consent"' in page.text
    signed = health.post(f"{theirs_page}/items/{theirs}/consent", data={"csrf_token": csrf_of(page.text)})
    assert signed.status_code == 200 and "已批准" in signed.text  # after the redirect
    assert f"{COLLEAGUE} + {HEALTH}" in signed.text  # the history names both people


def test_a_misspelt_setting_is_an_error_not_a_default(workspace: Workspace) -> None:
    item_id = _ask(workspace, UNION, "jx_park_workers")
    _act(workspace, COLLEAGUE, item_id, Action.CHECK)
    misspelt = SettingsFile(workspace.settings.default, {"33": {"not_shared_consent": "provder"}})
    with pytest.raises(PubdataError, match="not_shared_consent is 'provider' or 'second_competent'"):
        _act(workspace, COLLEAGUE, item_id, Action.COORDINATE_APPROVE, settings=misspelt)
    assert _item(workspace, item_id).state == ItemState.IN_COORDINATION
    never = SettingsFile(workspace.settings.default, {"33": {"conflicting_roles": "never"}}).for_tenant("33")
    with (
        workspace.sessions() as s,
        pytest.raises(PubdataError, match="conflicting_roles is 'warn' or 'refuse'"),
    ):
        check_user_roles(s, "x", [Role.CONSUMER, Role.PROVIDER], never, "test")


def test_role_pairs_that_ask_and_decide() -> None:
    assert role_conflicts([Role.CONSUMER, Role.COMPETENT_DEPARTMENT]) == [
        (Role.COMPETENT_DEPARTMENT, Role.CONSUMER)
    ]
    assert role_conflicts([Role.PROVIDER, Role.CONSUMER, Role.AUDITOR]) == [(Role.PROVIDER, Role.CONSUMER)]
    assert role_conflicts([Role.COMPETENT_DEPARTMENT, Role.AUDITOR, Role.SECURITY_OFFICER]) == []


def _users_add(workspace: Workspace, login: str, org: str, *roles: str, json_out: bool = False) -> Any:
    args = ["users", "add", login, "--org", org, "--password-stdin", "--home", str(workspace.home)]
    args += [part for role in roles for part in ("--role", role)]
    return runner.invoke(app, [*args, *(["--json"] if json_out else [])], input="Zhou-Mingyuan-2026!\n")


def test_users_add_warns_on_a_pair_that_asks_and_decides_and_a_setting_refuses_it(
    workspace: Workspace,
) -> None:
    warned = _users_add(workspace, "dsj_pair", "省大数据局", "consumer", "competent_department")
    assert warned.exit_code == 0, warned.output
    assert (
        "warning:" in warned.output
        and "one person could ask for data and decide on requests" in warned.output
    )
    as_json = _users_add(workspace, "rst_pair", "省人社厅", "provider", "consumer", json_out=True)
    assert as_json.exit_code == 0, as_json.output
    warning = json.loads(next(line for line in as_json.output.splitlines() if '"warning"' in line))
    assert warning["warning"]["code"] == "conflicting_roles"
    plain = _users_add(workspace, "dsj_plain", "省大数据局", "competent_department")
    assert plain.exit_code == 0 and "warning:" not in plain.output

    toml = workspace.home / "pubdata.toml"
    raw = tomllib.loads(toml.read_text("utf-8"))
    raw.setdefault("tenants", {})["3304"] = {"conflicting_roles": "refuse"}  # 嘉兴 refuses, the rest warns
    toml.write_text(tomli_w.dumps(raw), "utf-8")
    refused = _users_add(workspace, "jx_pair", "嘉兴市数据局", "consumer", "competent_department")
    assert refused.exit_code == 1, refused.output
    assert "one person could ask for data and decide on requests" in refused.output
    with workspace.sessions() as s:
        assert s.scalar(select(User.id).where(User.login == "jx_pair")) is None
        event = audit.list_events(s, "user.create", limit=1)[-1]
        assert (event.target, event.outcome, event.detail["rule"]) == (
            "jx_pair",
            "refused",
            "separation-of-duties",
        )
    assert _users_add(workspace, "jx_single", "嘉兴市数据局", "competent_department").exit_code == 0
