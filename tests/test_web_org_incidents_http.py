"""The portal's remaining workflow pages over HTTP (ASGI test client, demo province): the
organisation's responsible persons, a query that runs out of time, the step buttons in English,
removing an item from the cart, and incidents — who may do what, CSRF, and what is recorded."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway_support import JIAXING, PARK_APP, PARK_PURPOSE, SOCIAL
from pubdata.api.app import create_app
from pubdata.db.models import AuditEvent, Organisation, RequestItem, ResponsiblePerson, SharingRequest
from pubdata.gateway.engine import SandboxedEngine
from pubdata.web.i18n import translations
from pubdata.web.pages_requests import STEP_LABELS, STEPS
from pubdata.workflow.working_days import LOCAL_TZ
from pubdata.workspace import Workspace
from web_support import DemoPortal, client_for, clocked_app, csrf_of, demo_portal

EVIL = "<script>alert('x')</script>"
#: The provincial human-resources department: a provider the data bureau covers.
RST = "省人社厅"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, pinned_now: dt.datetime) -> Iterator[DemoPortal]:
    yield from demo_portal(tmp_path_factory, "weborg", pinned_now)


@pytest.fixture
def app(demo: DemoPortal, pinned_now: dt.datetime) -> Any:
    return clocked_app(demo[0], pinned_now)


def _org(workspace: Workspace, name: str) -> Organisation:
    with workspace.sessions() as session:
        found = session.scalars(select(Organisation).where(Organisation.short_name == name)).one()
        session.expunge(found)
        return found


def _events(workspace: Workspace, action: str, target: str) -> list[AuditEvent]:
    with workspace.sessions() as session:
        found = list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == action, AuditEvent.target == target)
            )
        )
        session.expunge_all()
        return found


@pytest.mark.req("REQ-25", "named-officers")
def test_responsible_persons_are_shown_and_only_the_competent_department_may_change_them(
    app: Any, demo: Any
) -> None:
    workspace, users = demo
    rst = _org(workspace, RST)
    provider = client_for(app, users, "zj_rst")
    own = provider.get("/org").text
    assert 'id="responsible"' in own and 'data-duty="head"' in own and 'data-duty="security_officer"' in own
    assert rst.head_name and rst.head_name in own
    assert 'class="stack responsible-change"' not in own, "the organisation itself may not change them"
    # Asking for another organisation's persons shows the own organisation's instead.
    assert provider.get("/org?responsible=XXXX").text.count(rst.name) >= 1
    refused = provider.post(
        "/org/responsible",
        data={"csrf_token": csrf_of(own), "organisation": rst.uscc, "duty": "head", "name": "冒名者"},
    )
    assert refused.status_code == 403 and "无权更改" in refused.text and "的责任人" in refused.text
    refusals = [e for e in _events(workspace, "org.responsible", rst.uscc) if e.actor == "zj_rst"]
    assert [e.outcome for e in refusals] == ["refused"], "the refusal is audited, nothing else"

    bureau = client_for(app, users, "zj_dsj")
    page = bureau.get(f"/org?responsible={rst.uscc}").text
    assert 'class="stack responsible-change"' in page and f'value="{rst.uscc}"' in page
    forged = bureau.post(
        "/org/responsible", data={"organisation": rst.uscc, "duty": "head", "name": "伪造者"}
    )
    assert forged.status_code == 403
    changed = bureau.post(
        "/org/responsible",
        data={"csrf_token": csrf_of(page), "organisation": rst.uscc, "duty": "head", "name": "新负责人",
              "contact": "0571-0000"},
        follow_redirects=False,
    )  # fmt: skip
    assert changed.status_code == 303 and changed.headers["location"].startswith(
        f"/org?responsible={rst.uscc}"
    )
    shown = bureau.get(changed.headers["location"]).text
    assert "新负责人" in shown and rst.head_name in shown, "the previous holder stays in the history"
    vacated = bureau.post(
        "/org/responsible",
        data={"csrf_token": csrf_of(page), "organisation": rst.uscc, "duty": "security_officer",
              "name": "ignored", "vacant": "1"},
        follow_redirects=False,
    )  # fmt: skip
    assert vacated.status_code == 303
    with workspace.sessions() as session:
        rows = session.scalars(
            select(ResponsiblePerson).where(ResponsiblePerson.organisation_id == rst.id)
        ).all()
        current = {r.duty: r.name for r in rows if r.ended_at is None}
        assert current == {"head": "新负责人"}
        assert any(r.name == rst.head_name and r.ended_at is not None for r in rows)
    outcomes = [e.detail.get("name") for e in _events(workspace, "org.responsible", rst.uscc)]
    assert "新负责人" in outcomes and None in outcomes
    assert "伪造者" not in str(outcomes) and "冒名者" not in str(outcomes)
    english = bureau.get(f"/org?responsible={rst.uscc}", cookies={"pubdata_lang": "en"}).text
    assert "vacant: the organisation cannot publish" in english and "Responsible persons" in english


def test_a_consumer_sees_its_own_persons_but_no_form(app: Any, demo: Any) -> None:
    workspace, users = demo
    union = client_for(app, users, "jx_zgh")
    page = union.get("/org").text
    assert 'id="responsible"' in page and "responsible-change" not in page
    rst = _org(workspace, RST)
    answer = union.post(
        "/org/responsible",
        data={"csrf_token": csrf_of(page), "organisation": rst.uscc, "duty": "head", "name": "工会改的"},
    )
    assert answer.status_code == 403
    with workspace.sessions() as session:
        names = session.scalars(
            select(ResponsiblePerson.name).where(ResponsiblePerson.organisation_id == rst.id)
        ).all()
    assert "工会改的" not in names


def test_a_query_past_its_time_budget_says_it_timed_out_and_serves_nothing(demo: Any) -> None:
    workspace, users = demo
    made = create_app(workspace)  # on the workspace's clock, the one the demo was built at
    made.state.query_engine = SandboxedEngine.for_workspace(workspace, time_budget_s=0.2)
    try:
        union = client_for(made, users, "jx_zgh")
        token = csrf_of(union.get("/query").text)
        heavy = f"SELECT count(*) FROM {SOCIAL} a, {SOCIAL} b, {SOCIAL} c, {SOCIAL} d, {SOCIAL} e"
        form = {"sql": heavy, "purpose": PARK_PURPOSE, "application": PARK_APP, "csrf_token": token}
        answer = union.post("/query/run", data=form)
        assert answer.status_code == 200  # an htmx fragment: the console shows it in place
        assert 'id="query-timeout"' in answer.text and "超时" in answer.text
        assert 'id="result-table"' not in answer.text
        english = union.post("/query/run", data=form, cookies={"pubdata_lang": "en"})
        assert "ran out of time" in english.text and "nothing was served" in english.text
        exported = union.post("/query/export", data={**form, "format": "csv"})
        assert exported.status_code == 504 and 'id="query-timeout"' in exported.text
        assert "text/html" in exported.headers["content-type"]
    finally:
        made.state.query_engine.close()


def _add_to_cart(client: TestClient, entry: str, fields: list[str]) -> None:
    token = csrf_of(client.get(f"/entries/{entry}").text)
    data = {"csrf_token": token, "entry": entry, "field": fields, "region_prefix": JIAXING,
            "region_field": "division_code"}  # fmt: skip
    added = client.post("/cart/items", data=data, follow_redirects=False)
    assert added.status_code == 303, added.text


def _submit_cart(client: TestClient, today: dt.date) -> int:
    terms = {
        "csrf_token": csrf_of(client.get("/cart").text), "legal_basis": "《中华人民共和国工会法》第六条",
        "purpose": PARK_PURPOSE, "scenario": "园区职工参保核查", "application": PARK_APP,
        "delivery_mode": "api", "valid_from": today.isoformat(),
        "valid_until": (today + dt.timedelta(days=30)).isoformat(),
    }  # fmt: skip
    sent = client.post("/cart/submit", data=terms, follow_redirects=False)
    assert sent.status_code == 303, sent.text
    return int(sent.headers["location"].rsplit("/", 1)[1])


def test_every_step_a_person_takes_has_a_translated_button() -> None:
    assert set(STEP_LABELS) == {a.value for a in STEPS}
    en, zh = translations("en"), translations("zh_CN")
    for message in STEP_LABELS.values():
        assert en.gettext(message) == message and zh.gettext(message) != message


@pytest.mark.clock  # dates from the pinned clock the demo was built at
def test_step_buttons_speak_the_visitors_language(app: Any, demo: Any, pinned_now: dt.datetime) -> None:
    union = client_for(app, demo[1], "jx_zgh")
    _add_to_cart(union, SOCIAL, ["id_number", "insurance_type", "division_code"])
    request_id = _submit_cart(union, pinned_now.astimezone(LOCAL_TZ).date())
    chinese = union.get(f"/requests/{request_id}").text
    english = union.get(f"/requests/{request_id}", cookies={"pubdata_lang": "en"}).text
    assert 'data-action="withdraw"' in english
    assert ">Withdraw</button>" in english and ">撤回</button>" not in english
    assert ">撤回</button>" in chinese


def _draft_items(workspace: Workspace) -> list[tuple[int, str]]:
    with workspace.sessions() as session:
        rows = session.execute(
            select(RequestItem.id, SharingRequest.state)
            .join(SharingRequest, RequestItem.request_id == SharingRequest.id)
            .where(SharingRequest.requested_by == "jx_zgh")
            .order_by(RequestItem.id)
        ).all()
    return [(item, state) for item, state in rows]


def test_an_item_leaves_the_cart_only_by_its_requester_with_the_token(app: Any, demo: Any) -> None:
    workspace, users = demo
    union = client_for(app, users, "jx_zgh")
    _add_to_cart(union, SOCIAL, ["id_number", "insurance_type", "division_code"])
    cart = union.get("/cart").text
    assert f'data-remove="{SOCIAL}"' in cart
    item = max(i for i, state in _draft_items(workspace) if state == "draft")
    forged = union.post(f"/cart/items/{item}/remove", data={"csrf_token": "nope"})
    assert forged.status_code == 403
    provider = client_for(app, users, "zj_rst")
    token = csrf_of(provider.get("/").text)
    assert provider.post(f"/cart/items/{item}/remove", data={"csrf_token": token}).status_code == 403
    assert item in [i for i, _ in _draft_items(workspace)], "the item is still in the cart"
    submitted = [i for i, state in _draft_items(workspace) if state != "draft"]
    token = csrf_of(cart)
    if submitted:  # an item of a submitted request is not in the cart: not found, and kept
        assert union.post(f"/cart/items/{submitted[0]}/remove", data={"csrf_token": token}).status_code == 404
        assert submitted[0] in [i for i, _ in _draft_items(workspace)]
    removed = union.post(f"/cart/items/{item}/remove", data={"csrf_token": token}, follow_redirects=False)
    assert removed.status_code == 303 and removed.headers["location"] == "/cart"
    assert item not in [i for i, _ in _draft_items(workspace)]
    assert f'data-remove="{SOCIAL}"' not in union.get("/cart").text
    [event] = _events(workspace, "request.remove_item", f"request-item:{item}")
    assert event.actor == "jx_zgh" and event.detail["entry"] == SOCIAL


@pytest.mark.clock  # dates from the pinned clock the demo was built at
@pytest.mark.req("REQ-28", "record", "remediation")
def test_an_incident_is_reported_worked_and_closed_by_the_right_people(
    app: Any, demo: Any, pinned_now: dt.datetime
) -> None:
    workspace, users = demo
    local = pinned_now.astimezone(LOCAL_TZ)
    last_night = (local - dt.timedelta(hours=12)).strftime("%Y-%m-%dT%H:%M")
    next_month = local.date() + dt.timedelta(days=31)
    provider = client_for(app, users, "zj_rst")
    listing = provider.get("/incidents").text
    assert 'id="report-incident"' in listing and 'data-nav="/incidents"' in listing
    # The column names the organisation (单位); only the menu item is its settings page (单位设置).
    assert '<th scope="col">单位</th>' in listing and ">单位设置<" in listing
    form = {"title": EVIL, "category": "data_leak", "severity": "major", "occurred_at": last_night,
            "description": "夜间发现批量导出", "entries": SOCIAL}  # fmt: skip
    assert provider.post("/incidents", data=form).status_code == 403, "a form without the token"
    future = provider.post(
        "/incidents", data={**form, "occurred_at": f"{next_month}T00:00", "csrf_token": csrf_of(listing)}
    )
    assert future.status_code == 400 and 'id="error-occurred_at"' in future.text
    # The refusal is said in the page's language, the field named in it (the API keeps the English).
    assert "晚于当前时间" in future.text and f"字段 occurred_at：发生时间 {next_month}" in future.text
    assert "is in the future" not in future.text
    made = provider.post("/incidents", data={**form, "csrf_token": csrf_of(listing)}, follow_redirects=False)
    assert made.status_code == 303
    path = made.headers["location"]
    incident = int(path.rsplit("/", 1)[1])
    page = provider.get(path).text
    assert EVIL not in page and "&lt;script&gt;" in page
    assert {'data-move="update"', 'data-move="resolve"'} <= set(re.findall(r'data-move="\w+"', page))
    assert 'data-move="close"' not in page

    union = client_for(app, users, "jx_zgh")  # another organisation: the incident is not there
    assert union.get(path).status_code == 404
    token = csrf_of(union.get("/incidents").text)
    assert union.post(f"{path}/update", data={"csrf_token": token, "note": "x"}).status_code == 404
    assert 'id="report-incident"' in union.get("/incidents").text
    citizen = client_for(app, users, "citizen")
    assert 'id="report-incident"' not in citizen.get("/incidents").text
    assert f'data-incident="{incident}"' not in citizen.get("/incidents").text

    bureau = client_for(app, users, "zj_dsj")
    assert f'href="/incidents/{incident}"' in bureau.get("/work").text
    seen = bureau.get(path).text
    assert "data-move=" not in seen, "the department closes a resolved incident, it does not work it"
    refused = bureau.post(f"{path}/resolve", data={"csrf_token": csrf_of(seen), "note": "代为处置"})
    assert refused.status_code == 403 and 'id="incident-error"' in refused.text

    token = csrf_of(page)
    assert provider.post(f"{path}/update", data={"csrf_token": token, "note": " "}).status_code == 400
    for move, note in (("update", "已封禁异常账号"), ("resolve", "已修复接口鉴权")):
        done = provider.post(
            f"{path}/{move}", data={"csrf_token": token, "note": note}, follow_redirects=False
        )
        assert done.status_code == 303, done.text
    closing = bureau.get(path).text
    assert 'data-move="close"' in closing and "已修复接口鉴权" in closing
    assert provider.post(f"{path}/close", data={"csrf_token": token, "note": "自行关闭"}).status_code == 403
    closed = bureau.post(
        f"{path}/close", data={"csrf_token": csrf_of(closing), "note": "核查完毕"}, follow_redirects=False
    )
    assert closed.status_code == 303
    final = provider.get(path, cookies={"pubdata_lang": "en"}).text
    assert 'data-state="closed"' in final and "data-move=" not in final and "Note: what was done" not in final
    for move in ("resolve", "close"):  # each done once and refused once, both in the log
        outcomes = sorted(e.outcome for e in _events(workspace, f"incident.{move}", f"incident:{incident}"))
        assert outcomes == ["ok", "refused"], move
