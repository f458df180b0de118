"""The portal in a real browser: Debian's Chromium driven by Playwright against ``pubdata serve``.

Never ``playwright install``: the browser is the system's ``/usr/bin/chromium`` (test.sh installs
it). Without it the tests skip with the reason, except under CI (``CI`` set), where they fail.
Each journey leaves a screenshot of its last page in ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright import sync_api

from gateway_support import JIAXING, PARK_APP, PARK_PURPOSE, SOCIAL, bearer, demo_users, serving
from pubdata.clock import fixed_clock
from pubdata.demo.build import build_demo

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: test.sh installs Debian's chromium", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def portal(
    tmp_path_factory: pytest.TempPathFactory, pinned_now: dt.datetime
) -> Iterator[tuple[str, dict[str, dict[str, Any]]]]:
    home = tmp_path_factory.mktemp("browser") / "home"
    build_demo(home, scale=0.02, clock=fixed_clock(pinned_now))
    with serving(home, now=pinned_now) as server:
        yield server.url, demo_users(home)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True, locale="zh-CN")
    opened = context.new_page()
    problems: list[str] = []
    opened.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    opened.on("pageerror", lambda e: problems.append(str(e)))
    yield opened
    SHOTS.mkdir(parents=True, exist_ok=True)
    opened.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    # A CSP violation or a script error shows up in the console: none is allowed.
    assert not problems, problems


def sign_in(page: Any, url: str, users: dict[str, Any], login: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("登录名").fill(login)
    page.get_by_label("密码").fill(users[login]["password"])
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{url}/")


NAV = {"/query": {"consumer", "provider"}, "/audit": {"auditor", "security_officer"},
       "/dashboard": {"competent_department", "platform_admin", "auditor", "security_officer"}}  # fmt: skip


@pytest.mark.parametrize(
    "login", ["zj_dsj", "zj_gat", "jx_zgh", "citizen", "zj_security", "zj_auditor", "zj_admin"]
)
def test_each_role_sees_only_its_nav_items(portal: Any, page: Any, login: str) -> None:
    url, users = portal
    sign_in(page, url, users, login)
    roles = set(users[login]["roles"])
    for path, allowed in NAV.items():
        shown = page.locator(f'nav a[data-nav="{path}"]').count() == 1
        assert shown is bool(roles & allowed), (login, path)
    assert page.locator('nav a[data-nav="/catalog"]').count() == 1


def test_consumer_searches_opens_the_entry_and_sees_masked_jiaxing_rows(portal: Any, page: Any) -> None:
    url, users = portal
    sign_in(page, url, users, "jx_zgh")
    page.locator('nav a[data-nav="/catalog"]').click()
    page.get_by_label("搜索", exact=True).fill("社会保险")
    page.get_by_role("button", name="搜索").click()
    link = page.locator(f'#results a[href="/entries/{SOCIAL}"]')
    link.wait_for()
    page.wait_for_url(re.compile(r"/catalog\?.*q="))  # htmx pushed the search into the address bar
    link.click()
    page.wait_for_url(f"{url}/entries/{SOCIAL}")
    headers = page.locator("#sample thead th").all_inner_texts()
    rows = [r.locator("td").all_inner_texts() for r in page.locator("#sample tbody tr").all()]
    assert rows
    ids = [r[headers.index("id_number")] for r in rows]
    assert all(re.fullmatch(r"\d{6}\*{8}[\dX]{4}", i) for i in ids), ids
    assert all(r[headers.index("division_code")].startswith(JIAXING) for r in rows)


def test_consumer_runs_a_query_and_downloads_csv_with_chinese_intact(portal: Any, page: Any) -> None:
    url, users = portal
    sign_in(page, url, users, "jx_zgh")
    page.locator('nav a[data-nav="/query"]').click()
    page.get_by_label("SQL").fill(f"SELECT name, insurance_type, division_code FROM {SOCIAL} LIMIT 5")
    page.get_by_label("应用").select_option(PARK_APP)
    page.get_by_label("用途").fill(PARK_PURPOSE)
    page.locator("#run").click()
    page.locator("#result-table tbody tr").first.wait_for()
    assert page.locator("#result-table tbody tr").count() == 5
    with page.expect_download() as waiting:
        page.locator('button[data-format="csv"]').click()
    download = waiting.value
    data = Path(download.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # a CSV for Excel: a BOM, so Chinese opens right
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    # `_disputed`: the demo holds a flagged objection on this entry, so row-level answers mark it.
    assert table[0] == ["name", "insurance_type", "division_code", "_disputed"]
    assert len(table) == 6 and any("保险" in row[1] for row in table[1:])
    assert all(row[2].startswith(JIAXING) for row in table[1:])


def test_a_refused_query_is_explained_in_the_page(portal: Any, page: Any) -> None:
    url, users = portal
    sign_in(page, url, users, "jx_zgh")
    page.goto(f"{url}/query")
    page.get_by_label("SQL").fill(f"SELECT * FROM {SOCIAL}")
    page.get_by_label("用途").fill("别的用途")
    page.locator("#run").click()
    page.locator("#query-error").wait_for()
    said = page.locator("#query-error").inner_text()
    assert "超出授权用途" in said and "别的用途" in said and "REQ-17" in said  # in the page's language


def test_auditor_verifies_the_chain(portal: Any, page: Any) -> None:
    url, users = portal
    sign_in(page, url, users, "zj_auditor")
    page.locator('nav a[data-nav="/audit"]').click()
    assert page.locator("#events tbody tr").count() > 0
    page.get_by_role("button", name="校验哈希链").click()
    outcome = page.locator("#verify-outcome")
    outcome.wait_for()
    assert outcome.get_attribute("data-ok") == "true"
    assert "校验通过" in outcome.inner_text()


def test_dashboard_draws_the_chart(portal: Any, page: Any) -> None:
    url, users = portal
    sign_in(page, url, users, "zj_dsj")
    page.locator('nav a[data-nav="/dashboard"]').click()
    page.wait_for_selector('#held-chart[data-ready="true"]')
    assert page.locator("#held-chart canvas").count() >= 1


def test_language_switch_to_english_and_back(portal: Any, page: Any) -> None:
    url, users = portal
    sign_in(page, url, users, "jx_zgh")
    page.goto(f"{url}/catalog")
    page.get_by_role("button", name="English").click()
    page.wait_for_url(f"{url}/catalog")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", name="Catalogue").count() == 1
    page.get_by_role("button", name="中文").click()
    page.wait_for_url(f"{url}/catalog")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.get_by_role("heading", name="数据目录").count() == 1


def test_auditor_finds_the_unions_call_about_an_identity_number(portal: Any, page: Any) -> None:
    url, users = portal
    body = {"sql": "SELECT id_number FROM jxzgh_park_members ORDER BY 1 LIMIT 1", "application": PARK_APP,
            "purpose": PARK_PURPOSE}  # fmt: skip
    union = bearer(users["jx_zgh"]["token"])
    served = httpx.post(f"{url}/api/v1/query", json=body, headers=union, timeout=30)
    assert served.status_code == 200, served.text
    number = served.json()["rows"][0][0]
    sign_in(page, url, users, "zj_auditor")
    page.locator('nav a[data-nav="/audit"]').click()
    page.get_by_label("号码类型").select_option("id_number")
    page.get_by_label("号码", exact=True).fill(number)
    page.locator("#who-accessed button[type=submit]").click()
    page.locator("#who-outcome").wait_for()
    assert page.locator('#accesses td[data-actor="jx_zgh"]').count() >= 1
    assert number not in page.locator("#who-outcome").inner_text() and number not in page.url
    assert page.url == f"{url}/audit"


def test_union_officer_issues_a_token_uses_it_once_shown_and_revokes_it(portal: Any, page: Any) -> None:
    url, users = portal
    sign_in(page, url, users, "jx_zgh")
    page.locator('nav a[data-nav="/org"]').click()
    page.wait_for_url(f"{url}/org")
    page.get_by_label("用途说明").fill("园区核验脚本")
    page.locator('input[name="scope"][value="query"]').check()
    page.get_by_label("有效天数").fill("7")
    page.get_by_role("button", name="签发").click()
    value = page.locator("#new-token-value").inner_text().strip()
    assert value.startswith("pd_")
    public_id = value.split("_")[1]
    body = {"sql": f"SELECT name FROM {SOCIAL} LIMIT 1", "application": PARK_APP, "purpose": PARK_PURPOSE}
    assert httpx.post(f"{url}/api/v1/query", json=body, headers=bearer(value), timeout=30).status_code == 200
    page.goto(f"{url}/org")
    assert value not in page.content(), "a token is shown once"
    row = page.locator(f'tr[data-token="{public_id}"]')
    assert row.get_attribute("data-state") == "active"
    row.get_by_role("button", name="吊销").click()
    page.wait_for_url(f"{url}/org")
    assert page.locator(f'tr[data-token="{public_id}"]').get_attribute("data-state") == "revoked"
    assert httpx.post(f"{url}/api/v1/query", json=body, headers=bearer(value), timeout=30).status_code == 401


def test_catalogue_facets_narrow_and_keyset_next_page(portal: Any, page: Any) -> None:
    url, users = portal
    sign_in(page, url, users, "zj_dsj")
    page.goto(f"{url}/catalog")
    everything = int(page.locator("#total").get_attribute("data-total"))
    option = page.locator('#share_class option[value="restricted"]')
    count = int(option.get_attribute("data-count"))
    page.locator("#share_class").select_option("restricted")
    page.wait_for_url(re.compile(r"/catalog\?.*share_class=restricted"))
    page.wait_for_selector(f'#total[data-total="{count}"]')
    assert 0 < count < everything
