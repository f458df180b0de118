"""The portal over HTTP (ASGI test client, demo province): headers, CSRF, lock-out, session expiry,
escaping, the body limit and who may open which page."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from gateway_support import JIAXING, SOCIAL
from pubdata.api.app import create_app
from pubdata.catalog import service
from pubdata.db.models import AuditEvent, PortalSession, SignInFailure, SignInLock, aware
from pubdata.gateway import access
from pubdata.web import visitor
from pubdata.web.middleware import CSP
from pubdata.workspace import Workspace
from web_support import DemoPortal, csrf_of, demo_portal, sign_in

EVIL = "<script>alert('x')</script>"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, pinned_now: dt.datetime) -> Iterator[DemoPortal]:
    yield from demo_portal(tmp_path_factory, "web", pinned_now)


@pytest.fixture
def client(demo: tuple[Workspace, dict[str, Any]]) -> Iterator[TestClient]:
    """A fresh app per test, with no lock-out left over: tests sign in from one address."""
    with demo[0].sessions() as session, session.begin():
        session.execute(delete(SignInFailure))
        session.execute(delete(SignInLock))
    with TestClient(create_app(demo[0])) as fresh:
        yield fresh


def signed_in(client: TestClient, users: dict[str, Any], login: str) -> TestClient:
    answer = sign_in(client, login, users[login]["password"])
    assert answer.status_code == 303, answer.text  # type: ignore[attr-defined]
    return client


def events(workspace: Workspace, action: str) -> list[AuditEvent]:
    with workspace.sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


# --- headers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/static/css/portal.css", "/static/vendor/htmx/htmx.min.js"])
def test_security_headers_on_pages_and_assets(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-security-policy"] == CSP
    assert "frame-ancestors 'none'" in CSP and "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "same-origin"


def test_pages_have_no_inline_script_or_style(client: TestClient, demo: Any) -> None:
    signed_in(client, demo[1], "zj_dsj")
    for path in ["/login", "/", "/catalog", "/dashboard", f"/entries/{SOCIAL}"]:
        html = client.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert "<style" not in html and " style=" not in html and "javascript:" not in html, path
        assert re.search(r'<html lang="zh-CN">', html), path


def test_session_cookie_flags(client: TestClient, demo: Any) -> None:
    answer = sign_in(client, "jx_zgh", demo[1]["jx_zgh"]["password"])
    cookie = answer.headers["set-cookie"]  # type: ignore[attr-defined]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_secure_cookie_setting(demo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBDATA_WEB_SECURE_COOKIES", "1")
    with TestClient(create_app(demo[0]), base_url="https://testserver") as client:
        answer = sign_in(client, "jx_zgh", demo[1]["jx_zgh"]["password"])
    assert "Secure" in answer.headers["set-cookie"]  # type: ignore[attr-defined]


def test_api_keeps_its_own_behaviour(client: TestClient) -> None:
    answer = client.get("/api/entries")
    assert answer.status_code == 200 and "content-security-policy" not in answer.headers
    assert "set-cookie" not in answer.headers


# --- sign-in, CSRF, lock-out, expiry ------------------------------------------------------------


def test_pages_need_a_session(client: TestClient) -> None:
    for path in ["/", "/catalog", f"/entries/{SOCIAL}", "/query", "/audit", "/dashboard"]:
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=/"), path


def test_sign_in_and_out_are_audited(client: TestClient, demo: Any) -> None:
    workspace, users = demo
    before_in, before_out = len(events(workspace, "web.login")), len(events(workspace, "web.logout"))
    signed_in(client, users, "citizen")
    token = csrf_of(client.get("/").text)
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303
    assert len(events(workspace, "web.login")) == before_in + 1
    assert len(events(workspace, "web.logout")) == before_out + 1


def test_forged_post_is_refused(client: TestClient, demo: Any) -> None:
    signed_in(client, demo[1], "jx_zgh")
    form = {"sql": f"SELECT * FROM {SOCIAL}", "purpose": "x", "application": "jx_park_workers"}
    for forged in ({}, {"csrf_token": "not-the-token"}):
        answer = client.post("/query/run", data={**form, **forged})
        assert answer.status_code == 403 and 'data-error="csrf"' in answer.text
    good = client.post("/query/run", data=form, headers={"X-CSRF-Token": csrf_of(client.get("/query").text)})
    assert good.status_code == 200


def test_sign_in_without_the_forms_token_is_refused(client: TestClient, demo: Any) -> None:
    data = {"login": "jx_zgh", "password": demo[1]["jx_zgh"]["password"]}
    assert client.post("/login", data=data, follow_redirects=False).status_code == 403


def test_lockout_after_five_failures_even_with_the_right_password(client: TestClient, demo: Any) -> None:
    workspace, users = demo
    before = len(events(workspace, "web.login_failed"))
    statuses = [sign_in(client, "zj_gat", "wrong-password").status_code for _ in range(5)]  # type: ignore[attr-defined]
    assert statuses == [401, 401, 401, 401, 429]  # the fifth failure locks, and says so
    answer = sign_in(client, "zj_gat", users["zj_gat"]["password"])
    assert answer.status_code == 429  # type: ignore[attr-defined]
    failed = events(workspace, "web.login_failed")
    assert len(failed) == before + 6 and all(e.outcome == "refused" for e in failed[before:])
    assert "locked" in failed[-1].detail["reason"]


def test_lockout_per_address_covers_other_logins(client: TestClient, demo: Any) -> None:
    for n in range(5):
        sign_in(client, f"nobody{n}", "wrong-password")
    answer = sign_in(client, "citizen", demo[1]["citizen"]["password"])
    assert answer.status_code == 429  # type: ignore[attr-defined]


def test_lock_ends_after_its_time(client: TestClient, demo: Any) -> None:
    lockout = client.app.state.web.lockout  # type: ignore[attr-defined]
    now = demo[0].clock()  # the app's clock: the workspace's, pinned
    for _ in range(5):
        lockout.fail(["login:x"], now)
    assert lockout.locked(["login:x"], now + dt.timedelta(minutes=14))
    assert not lockout.locked(["login:x"], now + dt.timedelta(minutes=16))


@pytest.mark.parametrize(("field", "minutes"), [("last_seen", 31), ("created_at", 12 * 60 + 1)])
def test_session_expires_when_idle_or_old(client: TestClient, demo: Any, field: str, minutes: int) -> None:
    signed_in(client, demo[1], "jx_zgh")
    assert client.get("/", follow_redirects=False).status_code == 200
    with demo[0].sessions() as session, session.begin():
        for row in session.scalars(select(PortalSession).where(PortalSession.login == "jx_zgh")):
            setattr(row, field, aware(getattr(row, field)) - dt.timedelta(minutes=minutes))
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_new_session_id_at_sign_in(client: TestClient, demo: Any) -> None:
    client.get("/login")
    before = client.cookies.get("pubdata_session")
    signed_in(client, demo[1], "jx_zgh")
    assert client.cookies.get("pubdata_session") not in (None, before)


# --- content ------------------------------------------------------------------------------------


def test_script_in_a_title_is_shown_as_text(client: TestClient, demo: Any) -> None:
    workspace, users = demo
    with workspace.sessions() as session, session.begin():
        source = service.get_entry(session, "jyt_schools")
        spec = service.spec_of(source)
        fields = [dataclasses.replace(f, authoritative=False, element_code=None) for f in spec.fields]
        evil = dataclasses.replace(spec, code="evil_entry", name=f"公园{EVIL}", fields=fields, abstract=EVIL)
        service.create_entry(session, evil, "test", workspace.settings.default)
        service.publish_entry(session, "evil_entry", "test", workspace.settings.default)
    signed_in(client, users, "zj_dsj")
    for path in ["/catalog?q=evil", "/entries/evil_entry", "/"]:
        html = client.get(path).text
        assert EVIL not in html, path
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html, path


def test_a_ten_megabyte_field_gets_413(client: TestClient, demo: Any) -> None:
    signed_in(client, demo[1], "jx_zgh")
    token = csrf_of(client.get("/query").text)
    body = {"sql": "x" * (10 * 1024 * 1024), "purpose": "p", "application": "a", "csrf_token": token}
    answer = client.post("/query/run", data=body)
    assert answer.status_code == 413 and 'data-error="too_large"' in answer.text
    assert answer.headers["content-security-policy"] == CSP


def test_the_entry_page_masks_and_filters_for_the_consumer(client: TestClient, demo: Any) -> None:
    signed_in(client, demo[1], "jx_zgh")
    html = client.get(f"/entries/{SOCIAL}").text
    sample = html[html.index('id="sample"') :]
    ids = re.findall(r"<td>(\d{6}\*{8}[\dX]{4})</td>", sample)
    assert ids and 'data-treatment="raw"' in html
    divisions = re.findall(r"<td>(33\d{10})</td>", sample)
    assert divisions and all(d.startswith(JIAXING) for d in divisions)


def test_entry_of_no_access_shows_the_refusal(client: TestClient, demo: Any) -> None:
    signed_in(client, demo[1], "citizen")
    html = client.get(f"/entries/{SOCIAL}").text
    assert 'id="sample-refusal"' in html and 'data-rule="none"' in html


def test_english_on_request(client: TestClient, demo: Any) -> None:
    signed_in(client, demo[1], "jx_zgh")
    token = csrf_of(client.get("/").text)
    client.post("/lang", data={"lang": "en", "next": "/catalog", "csrf_token": token})
    html = client.get("/catalog").text
    assert '<html lang="en">' in html and "Sharing class" in html and "共享属性" not in html


# --- roles --------------------------------------------------------------------------------------

PAGES = {"/query": visitor.QUERY_ROLES, "/audit": visitor.AUDIT_ROLES, "/dashboard": visitor.DASHBOARD_ROLES}


def test_query_roles_are_the_gateways() -> None:
    assert set(visitor.QUERY_ROLES) == set(access.QUERY_ROLES)


@pytest.mark.req("REQ-4", "roles")
@pytest.mark.parametrize(
    "login", ["zj_dsj", "zj_gat", "jx_zgh", "citizen", "zj_security", "zj_auditor", "zj_admin"]
)
def test_each_role_sees_and_opens_only_its_pages(client: TestClient, demo: Any, login: str) -> None:
    users = demo[1]
    signed_in(client, users, login)
    roles = set(users[login]["roles"])
    home = client.get("/").text
    for path, allowed in PAGES.items():
        may = bool(roles & {r.value for r in allowed})
        assert (f'data-nav="{path}"' in home) is may, (login, path)
        assert client.get(path).status_code == (200 if may else 403), (login, path)


def test_consumer_gets_403_on_the_audit_page(client: TestClient, demo: Any) -> None:
    signed_in(client, demo[1], "jx_zgh")
    answer = client.get("/audit")
    assert answer.status_code == 403 and 'data-error="forbidden"' in answer.text
    token = csrf_of(client.get("/").text)
    assert client.post("/audit/verify", data={"csrf_token": token}).status_code == 403


def test_dashboard_data(client: TestClient, demo: Any) -> None:
    signed_in(client, demo[1], "zj_dsj")
    data = client.get("/dashboard/data.json").json()
    assert data["departments"] and len(data["series"]) == 4
    assert all(len(s["data"]) == len(data["departments"]) for s in data["series"])
    assert sum(sum(s["data"]) for s in data["series"]) > 0


def test_unknown_entry_is_404_page(client: TestClient, demo: Any) -> None:
    signed_in(client, demo[1], "zj_dsj")
    assert client.get("/entries/no_such_entry").status_code == 404


def test_next_never_leaves_the_site(client: TestClient, demo: Any) -> None:
    token = csrf_of(client.get("/login").text)
    data = {"login": "citizen", "password": demo[1]["citizen"]["password"], "csrf_token": token}
    answer = client.post("/login", data={**data, "next": "//evil.example/"}, follow_redirects=False)
    assert answer.headers["location"] == "/"
