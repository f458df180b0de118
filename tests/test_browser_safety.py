"""Session safety in a real browser: a forged post is refused, an idle session ends (Chromium).

The portal is served with a three-second idle lifetime (``PUBDATA_WEB_IDLE_MINUTES=0.05``) so that
expiry can be watched happen; the rest of the settings are the defaults.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gateway_support import demo_users, serving
from pubdata.demo.build import build_demo
from test_browser_portal import SHOTS, browser, sign_in

__all__ = ["browser"]  # the shared Chromium fixture

IDLE_SECONDS = 3


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, dict[str, Any]]]]:
    home = tmp_path_factory.mktemp("browser-safety") / "home"
    build_demo(home, scale=0.02)
    before = os.environ.get("PUBDATA_WEB_IDLE_MINUTES")
    os.environ["PUBDATA_WEB_IDLE_MINUTES"] = str(IDLE_SECONDS / 60)
    try:
        with serving(home) as server:
            yield server.url, demo_users(home)
    finally:
        if before is None:
            os.environ.pop("PUBDATA_WEB_IDLE_MINUTES", None)
        else:
            os.environ["PUBDATA_WEB_IDLE_MINUTES"] = before


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(locale="zh-CN")
    opened = context.new_page()
    yield opened
    SHOTS.mkdir(parents=True, exist_ok=True)
    opened.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(portal: Any, page: Any) -> None:
    url, users = portal
    sign_in(page, url, users, "jx_zgh")
    # A script on the page (or a forged form) posts without the token: the sign-out must not happen.
    status = page.evaluate(
        "fetch('/logout', {method: 'POST', body: new URLSearchParams({})}).then(r => r.status)"
    )
    assert status == 403
    page.goto(f"{url}/query")
    assert page.url == f"{url}/query"  # still signed in
    page.goto(f"{url}/login")  # and a cross-site form, as another origin would send it
    forged = page.evaluate(
        """fetch('/logout', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                             body: 'csrf_token=forged'}).then(r => r.status)"""
    )
    assert forged == 403


def test_an_idle_session_ends_and_asks_to_sign_in_again(portal: Any, page: Any) -> None:
    url, users = portal
    sign_in(page, url, users, "jx_zgh")
    page.goto(f"{url}/query")
    assert page.url == f"{url}/query"
    time.sleep(IDLE_SECONDS + 1.5)
    page.goto(f"{url}/query")
    assert "/login" in page.url and "next=/query" in page.url


def test_signing_in_and_searching_work_with_the_keyboard_alone(portal: Any, page: Any) -> None:
    url, users = portal
    page.goto(f"{url}/login")
    page.get_by_label("登录名").focus()
    page.keyboard.type("jx_zgh")
    page.keyboard.press("Tab")  # the label order is the focus order: login, then password
    page.keyboard.type(users["jx_zgh"]["password"])
    page.keyboard.press("Enter")
    page.wait_for_url(f"{url}/")
    # Every control on the page has a name a screen reader can say.
    unnamed = page.evaluate(
        """[...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
             .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                          && !e.getAttribute('title') && !(e.textContent || '').trim()
                          && !e.getAttribute('placeholder'))
             .map(e => e.outerHTML)"""
    )
    assert unnamed == []


def test_pages_fit_a_phone_screen(portal: Any, browser: Any) -> None:
    url, users = portal
    context = browser.new_context(locale="zh-CN", viewport={"width": 375, "height": 740})
    phone = context.new_page()
    try:
        sign_in(phone, url, users, "jx_zgh")
        for path in ("/", "/catalog", "/query", "/requests"):
            phone.goto(f"{url}{path}")
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 375 + 1, f"{path} scrolls sideways on a phone ({width} px)"
        SHOTS.mkdir(parents=True, exist_ok=True)
        phone.screenshot(path=str(SHOTS / "test_pages_fit_a_phone_screen.png"), full_page=True)
    finally:
        context.close()
