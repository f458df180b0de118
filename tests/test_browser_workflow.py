"""The workflow pages in a real browser (Chromium via Playwright, ``pubdata serve`` on the demo):
a request from the cart to a narrower, masked grant; an objection upheld; the overdue list and the
SLA charts. Each journey ends with a screenshot in ``test-artifacts/screenshots/``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest

from gateway_support import JIAXING, PARK_APP, PARK_PURPOSE, SOCIAL, demo_users, serving
from pubdata.clock import fixed_clock
from pubdata.demo.build import build_demo
from pubdata.workflow.working_days import LOCAL_TZ
from test_browser_portal import CHROMIUM, SHOTS, browser, sign_in

__all__ = ["browser"]  # the shared Chromium of the portal's journeys

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing")


@pytest.fixture(scope="module")
def portal(
    tmp_path_factory: pytest.TempPathFactory, pinned_now: dt.datetime
) -> Iterator[tuple[str, dict[str, dict[str, Any]]]]:
    home = tmp_path_factory.mktemp("browser-flow") / "home"
    build_demo(home, scale=0.02, clock=fixed_clock(pinned_now))
    with serving(home, now=pinned_now) as server:
        yield server.url, demo_users(home)


class Pages:
    """One browser context per person; every console error is collected."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.contexts: list[Any] = []
        self.problems: list[str] = []
        self.last: Any = None

    def open(self) -> Any:
        context = self.browser.new_context(locale="zh-CN")
        self.contexts.append(context)
        page = context.new_page()
        page.on("console", lambda m: self.problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.last = page
        return page


@pytest.fixture
def pages(browser: Any, request: pytest.FixtureRequest) -> Iterator[Pages]:
    made = Pages(browser)
    yield made
    SHOTS.mkdir(parents=True, exist_ok=True)
    if made.last is not None:
        made.last.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
    for context in made.contexts:
        context.close()
    assert not made.problems, made.problems


def test_request_from_cart_to_a_narrower_masked_grant(
    portal: Any, pages: Pages, pinned_now: dt.datetime
) -> None:
    url, users = portal
    union = pages.open()
    sign_in(union, url, users, "jx_zgh")
    union.goto(f"{url}/catalog")
    union.get_by_label("搜索", exact=True).fill("社会保险")
    union.get_by_role("button", name="搜索").click()
    union.locator(f'#results a[href="/entries/{SOCIAL}"]').click()
    union.wait_for_url(f"{url}/entries/{SOCIAL}")
    cart = union.locator("#add-to-cart")
    cart.locator('input[name="field"][value="employer_uscc"]').uncheck()
    cart.locator('input[name="field"][value="enrolled_on"]').uncheck()
    union.get_by_label("区划前缀（如 3304）").fill(JIAXING)
    cart.get_by_role("button", name="加入申请清单").click()
    union.wait_for_url(f"{url}/cart")
    row = union.locator(f'#cart-items tr[data-entry="{SOCIAL}"]')
    assert "employer_uscc" not in row.inner_text() and "id_number" in row.inner_text()
    today = pinned_now.astimezone(LOCAL_TZ).date()  # the server's clock, pinned
    union.get_by_label("法律依据或履职依据").fill("《中华人民共和国工会法》第六条")
    union.get_by_label("用途", exact=True).fill(PARK_PURPOSE)
    union.get_by_label("应用场景").fill("园区职工参保核查")
    union.get_by_label("应用", exact=True).select_option(PARK_APP)
    union.get_by_label("使用期限起").fill(today.isoformat())
    union.get_by_label("使用期限止").fill((today + dt.timedelta(days=60)).isoformat())
    union.get_by_role("button", name="提交申请").click()
    union.wait_for_url(re.compile(r"/requests/\d+$"))
    request_path = union.url.removeprefix(url)
    assert "待审核" in union.locator(".item .state").inner_text()

    bureau = pages.open()
    sign_in(bureau, url, users, "zj_dsj")
    bureau.locator('nav a[data-nav="/work"]').click()
    bureau.locator(f'#waiting-competent a[href^="{request_path}#"]').click()
    bureau.locator('form[data-action="check"] button').click()
    bureau.wait_for_url(re.compile(re.escape(request_path)))
    assert "待提供单位答复" in bureau.locator(".item .state").inner_text()

    provider = pages.open()
    sign_in(provider, url, users, "zj_rst")
    provider.locator('nav a[data-nav="/work"]').click()
    provider.locator(f'#waiting-provider a[href^="{request_path}#"]').click()
    approve = provider.locator('form[data-action="approve"]')
    approve.locator('input[name="field"][value="employer_name"]').uncheck()
    approve.locator('select[data-field="name"]').select_option("name:mask_name")
    approve.locator('select[data-field="id_number"]').select_option("id_number:mask_id_number")
    approve.get_by_role("button", name="同意").click()
    provider.wait_for_url(re.compile(re.escape(request_path)))
    assert "已批准" in provider.locator(".item .state").inner_text()
    assert provider.locator(".item [data-grant]").count() == 1

    union.goto(f"{url}{request_path}")
    assert "已批准" in union.locator(".item .state").inner_text()
    union.locator('nav a[data-nav="/query"]').click()
    union.get_by_label("SQL").fill(f"SELECT id_number, name, division_code FROM {SOCIAL} LIMIT 20")
    union.get_by_label("应用").select_option(PARK_APP)
    union.get_by_label("用途").fill(PARK_PURPOSE)
    union.locator("#run").click()
    union.locator("#result-table tbody tr").first.wait_for()
    rows = [r.locator("td").all_inner_texts() for r in union.locator("#result-table tbody tr").all()]
    assert rows
    assert all(re.fullmatch(r"\d{6}\*{8}[\dX]{4}", r[0]) for r in rows), rows
    assert all(r[2].startswith(JIAXING) for r in rows)


def test_provider_upholds_the_flagged_objection(portal: Any, pages: Pages) -> None:
    url, users = portal
    provider = pages.open()
    sign_in(provider, url, users, "zj_rst")
    provider.goto(f"{url}/entries/{SOCIAL}")
    assert provider.locator("#disputed-notice").count() == 1
    provider.locator('nav a[data-nav="/work"]').click()
    provider.locator('#objections tr[data-state="flagged"] a').first.click()
    provider.wait_for_url(re.compile(r"/objections/\d+$"))
    form = provider.locator('form[data-move="uphold"]')
    form.get_by_label("理由").fill("经核对社保缴费记录，该职工参保状态无误")
    form.get_by_role("button").click()
    provider.wait_for_url(re.compile(r"/objections/\d+$"))
    assert provider.locator("#objection").get_attribute("data-state") == "unflagged"
    assert "参保状态无误" in provider.locator(".reason").inner_text()


def test_bureau_sees_the_overdue_request_and_the_sla_charts(portal: Any, pages: Pages) -> None:
    url, users = portal
    bureau = pages.open()
    sign_in(bureau, url, users, "zj_dsj")
    assert int(bureau.locator("#unread").get_attribute("data-unread") or "0") > 0
    bureau.locator('nav a[data-nav="/work"]').click()
    late = bureau.locator('#overdue tr[data-entry="gw_enterprise_electricity"]')
    assert late.get_attribute("data-overdue") == "true"
    assert "已超期" in late.inner_text()
    bureau.locator('nav a[data-nav="/dashboard"]').click()
    for chart in ("#states-chart", "#sla-chart", "#steps-chart", "#calls-chart", "#quality-chart"):
        bureau.wait_for_selector(f'{chart}[data-ready="true"]')
        assert bureau.locator(f"{chart} canvas").count() >= 1
