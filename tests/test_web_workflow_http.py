"""The portal's workflow pages over HTTP (ASGI test client, demo province): the cart and request
form, a request's page and its steps, the provider's and the data bureau's work lists, objections,
the inbox and the dashboard's JSON — who may open what, CSRF on every form, escaping."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from gateway_support import JIAXING, PARK_APP, PARK_PURPOSE, SOCIAL
from pubdata.db.models import Objection, RequestItem
from pubdata.workflow import sla
from pubdata.workflow.working_days import LOCAL_TZ
from pubdata.workspace import Workspace
from web_support import DemoPortal, client_for, clocked_app, csrf_of, demo_portal

EVIL = "<script>alert('x')</script>"
#: Deadlines and "overdue" are judged at the pinned clock, the instant the demo was built at.
pytestmark = pytest.mark.clock


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, pinned_now: dt.datetime) -> Iterator[DemoPortal]:
    yield from demo_portal(tmp_path_factory, "webflow", pinned_now)


@pytest.fixture
def app(demo: DemoPortal, pinned_now: dt.datetime) -> Any:
    return clocked_app(demo[0], pinned_now)


def _file_request(app: Any, users: dict[str, Any], fields: list[str]) -> int:
    """The union officer puts the social-insurance entry in the cart and submits the request."""
    union = client_for(app, users, "jx_zgh")
    page = union.get(f"/entries/{SOCIAL}").text
    assert 'id="add-to-cart"' in page
    token = csrf_of(page)
    added = union.post(
        "/cart/items",
        data={
            "csrf_token": token,
            "entry": SOCIAL,
            "field": fields,
            "region_prefix": JIAXING,
            "region_field": "division_code",
        },
        follow_redirects=False,
    )
    assert added.status_code == 303, added.text
    today = app.state.clock().astimezone(LOCAL_TZ).date()
    terms = {
        "csrf_token": token, "legal_basis": "《中华人民共和国工会法》第六条", "purpose": PARK_PURPOSE,
        "scenario": "园区职工参保核查", "application": PARK_APP, "delivery_mode": "api",
        "valid_from": today.isoformat(), "valid_until": (today + dt.timedelta(days=30)).isoformat(),
    }  # fmt: skip
    sent = union.post("/cart/submit", data=terms, follow_redirects=False)
    assert sent.status_code == 303, sent.text
    found = re.fullmatch(r"/requests/(\d+)", sent.headers["location"])
    assert found
    return int(found.group(1))


def _item_of(workspace: Workspace, request_id: int) -> int:
    with workspace.sessions() as session:
        return session.scalars(select(RequestItem.id).where(RequestItem.request_id == request_id)).one()


def test_cart_submission_reaches_the_check_and_only_parties_see_it(app: Any, demo: Any) -> None:
    workspace, users = demo
    request_id = _file_request(app, users, ["id_number", "name", "insurance_type", "division_code"])
    union = client_for(app, users, "jx_zgh")
    page = union.get(f"/requests/{request_id}")
    assert page.status_code == 200 and "待审核" in page.text
    assert 'data-action="withdraw"' in page.text and "request.submit" in page.text
    assert "working days left" in union.get(f"/requests/{request_id}", cookies={"pubdata_lang": "en"}).text
    assert f'href="/requests/{request_id}#item-' in union.get("/requests").text
    bureau = client_for(app, users, "zj_dsj")
    assert 'data-action="check"' in bureau.get(f"/requests/{request_id}").text
    police = client_for(app, users, "zj_gat")  # provides another entry: no party to this request
    refused = police.get(f"/requests/{request_id}")
    assert refused.status_code == 404 and PARK_PURPOSE not in refused.text
    item = _item_of(workspace, request_id)
    step = police.post(
        f"/requests/{request_id}/items/{item}/check",
        data={"csrf_token": csrf_of(police.get("/").text)},
        follow_redirects=False,
    )
    assert step.status_code == 404


def test_a_missing_term_is_the_services_sentence(app: Any, demo: Any) -> None:
    union = client_for(app, demo[1], "jx_zgh")
    token = csrf_of(union.get("/cart").text)
    answer = union.post("/cart/submit", data={"csrf_token": token, "delivery_mode": "fax"})
    assert answer.status_code == 400
    assert (
        'id="error-delivery_mode"' in answer.text and "交付方式 &#39;fax&#39; 不在可选范围内" in answer.text
    )


def test_provider_refuses_and_the_reason_is_escaped(app: Any, demo: Any) -> None:
    workspace, users = demo
    request_id = _file_request(app, users, ["id_number", "insurance_type", "division_code"])
    item = _item_of(workspace, request_id)
    bureau = client_for(app, users, "zj_dsj")
    token = csrf_of(bureau.get(f"/requests/{request_id}").text)
    checked = bureau.post(f"/requests/{request_id}/items/{item}/check", data={"csrf_token": token})
    assert checked.status_code == 200 and "待提供单位答复" in checked.text
    provider = client_for(app, users, "zj_rst")
    waiting = provider.get("/work").text
    assert f'data-item="{item}"' in waiting
    token = csrf_of(waiting)
    empty = provider.post(f"/requests/{request_id}/items/{item}/refuse", data={"csrf_token": token})
    assert empty.status_code == 400 and "须填写理由" in empty.text
    provider.post(f"/requests/{request_id}/items/{item}/refuse", data={"csrf_token": token, "reason": EVIL})
    shown = client_for(app, users, "jx_zgh").get(f"/requests/{request_id}").text
    assert EVIL not in shown and "&lt;script&gt;alert(" in shown
    assert 'data-action="dispute"' in shown


def test_provider_approves_narrower_with_a_mask(app: Any, demo: Any) -> None:
    workspace, users = demo
    request_id = _file_request(app, users, ["id_number", "name", "insurance_type", "division_code"])
    item = _item_of(workspace, request_id)
    bureau = client_for(app, users, "zj_dsj")
    bureau.post(
        f"/requests/{request_id}/items/{item}/check",
        data={"csrf_token": csrf_of(bureau.get("/").text)},
    )
    provider = client_for(app, users, "zj_rst")
    page = provider.get(f"/requests/{request_id}").text
    assert 'value="name:mask_name"' in page and 'name="field" value="name" checked' in page
    wider = provider.post(
        f"/requests/{request_id}/items/{item}/approve",
        data={"csrf_token": csrf_of(page), "field": ["id_number", "mobile"]},
    )
    assert wider.status_code == 400 and "不能扩大" in wider.text
    done = provider.post(
        f"/requests/{request_id}/items/{item}/approve",
        data={
            "csrf_token": csrf_of(page),
            "field": ["id_number", "name", "division_code"],
            "deid": ["id_number:mask_id_number", "name:mask_name", "division_code:"],
        },
    )
    assert done.status_code == 200 and "已批准" in done.text
    with workspace.sessions() as session:
        approved = session.get(RequestItem, item)
        assert approved is not None and approved.grant is not None
        assert sorted(approved.grant.fields) == ["division_code", "id_number", "name"]
        assert approved.grant.deid["name"]["function"] == "mask_name"


@pytest.mark.parametrize(
    "path",
    ["/cart/items", "/cart/submit", "/requests/1/items/1/withdraw", "/objections/1/accept", "/inbox/read"],
)
def test_every_new_form_needs_the_csrf_token(app: Any, demo: Any, path: str) -> None:
    union = client_for(app, demo[1], "jx_zgh")
    answer = union.post(path, data={"entry": SOCIAL, "reason": "x"})
    assert answer.status_code == 403 and 'data-error="csrf"' in answer.text


@pytest.mark.parametrize(
    ("login", "path", "status"),
    [
        ("jx_zgh", "/work", 403),
        ("zj_rst", "/cart", 403),
        ("jx_zgh", "/dashboard/sla.json", 403),
        ("zj_dsj", "/dashboard/sla.json", 200),
        ("zj_dsj", "/dashboard/states.json", 200),
        ("zj_dsj", "/dashboard/quality.json", 200),
        ("zj_dsj", "/dashboard/calls.json", 200),
        ("zj_rst", "/work", 200),
        ("zj_dsj", "/work", 200),
        ("citizen", "/inbox", 200),
        ("jx_zgh", f"/entries/{SOCIAL}/usage.json", 200),
    ],
)
def test_who_may_open_which_page(app: Any, demo: Any, login: str, path: str, status: int) -> None:
    assert client_for(app, demo[1], login).get(path).status_code == status


def test_objection_is_shown_to_its_parties_only_and_upheld_with_a_reason(app: Any, demo: Any) -> None:
    workspace, users = demo
    with workspace.sessions() as session:
        flagged = session.scalars(select(Objection.id).where(Objection.state == "flagged")).first()
    assert flagged is not None
    assert client_for(app, users, "zj_gat").get(f"/objections/{flagged}").status_code == 404
    union = client_for(app, users, "jx_zgh")
    assert 'id="disputed-notice"' in union.get(f"/entries/{SOCIAL}").text
    assert 'data-move="uphold"' not in union.get(f"/objections/{flagged}").text
    provider = client_for(app, users, "zj_rst")
    assert f'data-objection="{flagged}"' in provider.get("/work").text
    page = provider.get(f"/objections/{flagged}").text
    assert 'data-move="uphold"' in page
    empty = provider.post(f"/objections/{flagged}/uphold", data={"csrf_token": csrf_of(page)})
    assert empty.status_code == 400
    done = provider.post(
        f"/objections/{flagged}/uphold", data={"csrf_token": csrf_of(page), "reason": f"核实无误{EVIL}"}
    )
    assert done.status_code == 200 and "已撤销标注" in done.text
    assert EVIL not in done.text and "&lt;script&gt;" in done.text


def test_inbox_counts_unread_and_marks_read(app: Any, demo: Any) -> None:
    bureau = client_for(app, demo[1], "zj_dsj")
    home = bureau.get("/").text
    unread = int(re.search(r'data-unread="(\d+)"', home).group(1))  # type: ignore[union-attr]
    assert unread > 0
    inbox = bureau.get("/inbox").text
    assert 'href="/requests/' in inbox
    bureau.post("/inbox/read", data={"csrf_token": csrf_of(inbox)})
    assert 'data-unread="0"' in bureau.get("/").text


def test_overdue_electricity_request_is_listed_for_the_bureau(app: Any, demo: Any) -> None:
    page = client_for(app, demo[1], "zj_dsj").get("/work").text
    overdue = page.split('id="overdue"', 1)[1].split("</table>", 1)[0]
    assert "gw_enterprise_electricity" in overdue and 'data-overdue="true"' in overdue


def test_sla_figures_come_from_the_moves(demo: Any) -> None:
    workspace, _ = demo
    with workspace.sessions() as session:
        counts = sla.by_state(session)
        steps = sla.steps_taken(session)
    assert counts["approved"] >= 1 and counts["refused"] >= 1 and counts["pending_decision"] >= 1
    assert "draft" not in counts
    checks = [s for s in steps if s.step == "check"]
    assert checks and all(s.ended >= s.started for s in steps)
    assert all(s.within is (s.ended <= s.due) for s in steps)
    weeks = sla.by_week(steps)
    assert sum(w["within"] + w["late"] for w in weeks.values()) == len(steps)
    assert "check" in sla.median_days(steps)
