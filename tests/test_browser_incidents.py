"""The incident pages in a real browser (Chromium via Playwright, ``pubdata serve`` on the demo): a
provider reports an incident and the data bureau finds it in its list, its work and its inbox; an
incident is worked to closure with every step in its history while other organisations cannot see
it; a report without a title or a move without a note is refused on the page and changes nothing.
Each journey ends with a screenshot in ``test-artifacts/screenshots/``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest

from gateway_support import SOCIAL, demo_users, serving
from pubdata.clock import fixed_clock
from pubdata.demo.build import build_demo
from pubdata.workflow.working_days import LOCAL_TZ
from test_browser_portal import CHROMIUM, browser, sign_in
from test_browser_workflow import Pages, pages

__all__ = ["browser", "pages"]  # the shared Chromium and one-context-per-person fixtures

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing")

#: The organisation `zj_rst` works for, as the pages name it.
RST = "浙江省人力资源和社会保障厅"


@pytest.fixture(scope="module")
def portal(
    tmp_path_factory: pytest.TempPathFactory, pinned_now: dt.datetime
) -> Iterator[tuple[str, dict[str, dict[str, Any]]]]:
    home = tmp_path_factory.mktemp("browser-incidents") / "home"
    build_demo(home, scale=0.02, clock=fixed_clock(pinned_now))
    with serving(home, now=pinned_now) as server:
        yield server.url, demo_users(home)


def yesterday_evening(now: dt.datetime) -> str:
    """A ``datetime-local`` value the evening before `now` (the server's pinned clock), in Hangzhou."""
    return f"{(now.astimezone(LOCAL_TZ).date() - dt.timedelta(days=1)).isoformat()}T22:15"


def fill_report(
    page: Any, title: str, category: str, severity: str, description: str, now: dt.datetime
) -> None:
    """Fill the report form on ``/incidents`` by its labels and send it."""
    form = page.locator("#report-incident")
    form.get_by_label("事件概述").fill(title)
    form.get_by_label("类别").select_option(label=category)
    form.get_by_label("严重程度").select_option(label=severity)
    form.get_by_label("发生时间").fill(yesterday_evening(now))
    form.get_by_label("涉及的目录（代码，逗号分隔）").fill(SOCIAL)
    form.get_by_label("详细说明").fill(description)
    form.get_by_role("button", name="报告").click()


def report(page: Any, url: str, title: str, now: dt.datetime) -> str:
    """Report an incident through the form; the path of its page."""
    page.locator('nav a[data-nav="/incidents"]').click()
    page.wait_for_url(f"{url}/incidents")
    fill_report(page, title, "数据泄露", "重大", "夜间发现某账号批量导出参保人员数据", now)
    page.wait_for_url(re.compile(r"/incidents/\d+$"))
    return str(page.url).removeprefix(url)


def take(page: Any, move: str, note: str) -> None:
    form = page.locator(f'form[data-move="{move}"]')
    form.get_by_label("说明：采取了哪些措施").fill(note)
    form.get_by_role("button").click()
    page.wait_for_load_state()


def forgive(pages: Pages, status: int, times: int) -> None:
    """A refusal the journey provokes shows in the console as a failed load: expected, not a fault."""
    for _ in range(times):
        failed = [p for p in pages.problems if f"status of {status} " in p]
        if failed:
            pages.problems.remove(failed[0])


def history(page: Any) -> list[list[str]]:
    """The steps table as (actor, state, note) rows, oldest first."""
    rows = page.locator("#incident-steps tbody tr").all()
    return [r.locator("td").all_inner_texts()[1:] for r in rows]


@pytest.mark.req("REQ-28", "record", "notify")
def test_a_reported_incident_reaches_the_data_bureau(
    portal: Any, pages: Pages, pinned_now: dt.datetime
) -> None:
    url, users = portal
    provider = pages.open()
    sign_in(provider, url, users, "zj_rst")
    path = report(provider, url, "社保接口疑似数据泄露", pinned_now)
    incident = path.rsplit("/", 1)[1]
    facts = provider.locator("#incident")
    assert facts.get_attribute("data-state") == "reported"
    assert "已报告" in facts.locator(".state").inner_text()
    shown = facts.inner_text()
    assert "数据泄露" in shown and "重大" in shown and RST in shown and SOCIAL in shown
    assert "批量导出参保人员数据" in facts.locator(".description").inner_text()
    assert history(provider) == [["zj_rst", "已报告", "夜间发现某账号批量导出参保人员数据"]]
    assert provider.locator('form[data-move="close"]').count() == 0, "only the bureau closes"

    bureau = pages.open()
    sign_in(bureau, url, users, "zj_dsj")
    assert int(bureau.locator("#unread").get_attribute("data-unread") or "0") >= 1
    bureau.locator('nav a[data-nav="/incidents"]').click()
    row = bureau.locator(f'#incident-list tr[data-incident="{incident}"]')
    assert row.get_attribute("data-state") == "reported"
    assert "社保接口疑似数据泄露" in row.inner_text() and "重大" in row.inner_text()
    assert bureau.locator("#report-incident").count() == 0, "the bureau oversees, it does not report"
    bureau.locator('nav a[data-nav="/work"]').click()
    waiting = bureau.locator(f'#incidents tr[data-incident="{incident}"]')
    assert "已报告" in waiting.inner_text() and "重大" in waiting.inner_text()
    bureau.locator('nav a[data-nav="/inbox"]').click()
    notice = bureau.locator(f'#notifications li:has(a[href="{path}"])')
    assert notice.get_attribute("data-read") == "false"
    assert "社保接口疑似数据泄露" in notice.inner_text() and "数据泄露" in notice.inner_text()
    notice.locator(f'a[href="{path}"]').click()
    bureau.wait_for_url(f"{url}{path}")
    assert bureau.locator("#incident").get_attribute("data-state") == "reported"
    assert bureau.locator("form[data-move]").count() == 0, "nothing for the bureau to do yet"

    officer = pages.open()  # the security officer answers for security platform-wide: it reads all
    sign_in(officer, url, users, "zj_security")
    officer.goto(f"{url}/incidents")
    assert officer.locator(f'#incident-list tr[data-incident="{incident}"]').count() == 1


@pytest.mark.req("REQ-28", "remediation")
def test_an_incident_is_worked_to_closure_and_stays_with_its_parties(
    portal: Any, pages: Pages, pinned_now: dt.datetime
) -> None:
    url, users = portal
    provider = pages.open()
    sign_in(provider, url, users, "zj_rst")
    path = report(provider, url, "接口鉴权失效", pinned_now)
    incident = path.rsplit("/", 1)[1]
    for move, note, state in (
        ("update", "已封禁异常账号", "remediating"),
        ("resolve", "已修复接口鉴权", "resolved"),
        ("reopen", "复查发现仍有旧令牌可用", "remediating"),
        ("resolve", "已吊销全部旧令牌", "resolved"),
    ):
        take(provider, move, note)
        assert provider.locator("#incident").get_attribute("data-state") == state, move
    assert provider.locator('form[data-move="close"]').count() == 0

    bureau = pages.open()
    sign_in(bureau, url, users, "zj_dsj")
    bureau.goto(f"{url}{path}")
    assert [f.get_attribute("data-move") for f in bureau.locator("form[data-move]").all()] == ["close"]
    take(bureau, "close", "核查完毕，同意关闭")
    assert bureau.locator("#incident").get_attribute("data-state") == "closed"
    assert "已关闭" in bureau.locator("#incident .state").inner_text()
    assert bureau.locator("form[data-move]").count() == 0
    assert history(bureau) == [
        ["zj_rst", "已报告", "夜间发现某账号批量导出参保人员数据"],
        ["zj_rst", "处置中", "已封禁异常账号"],
        ["zj_rst", "已处置", "已修复接口鉴权"],
        ["zj_rst", "处置中", "复查发现仍有旧令牌可用"],
        ["zj_rst", "已处置", "已吊销全部旧令牌"],
        ["zj_dsj", "已关闭", "核查完毕，同意关闭"],
    ]
    bureau.locator('nav a[data-nav="/work"]').click()
    assert bureau.locator(f'#incidents tr[data-incident="{incident}"]').count() == 0, "no longer open"
    provider.goto(f"{url}/incidents")
    row = provider.locator(f'#incident-list tr[data-incident="{incident}"]')
    assert row.get_attribute("data-state") == "closed" and "已关闭" in row.inner_text()

    for login in ("jx_zgh", "zj_gat", "citizen"):  # other organisations and a private person
        other = pages.open()
        sign_in(other, url, users, login)
        answer = other.goto(f"{url}{path}")
        assert answer.status == 404, login
        assert other.locator('[data-error="not_found"]').count() == 1, login
        assert "接口鉴权失效" not in other.content(), login
        other.goto(f"{url}/incidents")
        assert other.locator(f'#incident-list tr[data-incident="{incident}"]').count() == 0, login
    assert other.locator('nav a[data-nav="/incidents"]').count() == 0, "not in a citizen's menu"
    forgive(pages, 404, times=3)


def test_a_report_without_a_title_or_a_move_without_a_note_changes_nothing(
    portal: Any, pages: Pages, pinned_now: dt.datetime
) -> None:
    url, users = portal
    provider = pages.open()
    sign_in(provider, url, users, "zj_gat")
    provider.goto(f"{url}/incidents")
    before = provider.locator("#incident-list tr[data-incident]").count()
    # Left empty, the browser itself holds the form back and says the field is needed.
    fill_report(provider, "", "数据篡改", "一般", "日志中发现异常写入", pinned_now)
    assert provider.url == f"{url}/incidents"
    assert provider.locator("#incident-title").evaluate("e => e.validity.valueMissing") is True
    # Spaces pass the browser's check; the server refuses them and keeps what was typed.
    with provider.expect_response(f"{url}/incidents") as sent:
        fill_report(provider, "   ", "数据篡改", "一般", "日志中发现异常写入", pinned_now)
    assert sent.value.status == 400
    error = provider.locator("#error-title")
    assert error.get_attribute("role") == "alert" and "title" in error.inner_text()
    assert provider.locator("#incident-description").input_value() == "日志中发现异常写入"
    assert provider.locator("#incident-severity").input_value() == "general"
    provider.goto(f"{url}/incidents")
    assert provider.locator("#incident-list tr[data-incident]").count() == before, "nothing was made"

    path = report(provider, url, "户籍库写入异常", pinned_now)
    provider.locator('form[data-move="update"] textarea').fill("   ")
    with provider.expect_response(f"{url}{path}/update") as moved:
        provider.locator('form[data-move="update"] button').click()
    assert moved.value.status == 400
    assert "须填写说明" in provider.locator("#incident-error").inner_text()
    provider.goto(f"{url}{path}")
    assert provider.locator("#incident").get_attribute("data-state") == "reported"
    assert len(history(provider)) == 1, "the refused move left no step"
    forgive(pages, 400, times=2)
