"""Sign-in that holds under a burst, proxy headers trusted only from named proxies, no session row for
a visitor who is not signed in, ``Cache-Control: no-store`` on answers with personal data, and
portal numbers past the API's bound answered 404.

The burst and the proxy headers are tried against a real ``pubdata serve`` on loopback: a thread
pool of in-process clients would not show the connection pool running out, nor uvicorn's own
reading of ``X-Forwarded-For``.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from gateway_support import PARK_APP, PARK_PURPOSE, SOCIAL, bearer, serving
from pubdata.api.app import create_app
from pubdata.db.models import AuditEvent, PortalSession, SharingRequest, SignInFailure
from pubdata.gateway.identity import create_user
from pubdata.gateway.roles import Role
from pubdata.web.config import WebSettings
from pubdata.web.lockout import Lockout
from pubdata.web.signin import Outcome, PasswordSignIn
from pubdata.workspace import Workspace
from web_support import DemoPortal, csrf_of, demo_portal, sign_in

LOGIN = "li.na"
PASSWORD = "a-long-enough-password"
LIMIT = WebSettings().max_failures
HUGE = "99999999999999999999"
OPEN = [Role.OPEN_DATA_USER]


def _home_with_one_person(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    workspace = Workspace.init(home)
    with workspace.sessions() as session, session.begin():
        create_user(session, LOGIN, roles=OPEN, organisation=None, password=PASSWORD, actor="test")
    workspace.engine.dispose()
    return home


def _failed_sign_ins(home: Path) -> list[AuditEvent]:
    workspace = Workspace.open(home)
    try:
        with workspace.sessions() as session:
            found = session.scalars(select(AuditEvent).where(AuditEvent.action == "web.login_failed"))
            return list(found)
    finally:
        workspace.engine.dispose()


def _post_sign_in(client: httpx.Client, login: str, password: str, **headers: str) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    data = {"login": login, "password": password, "csrf_token": token, "next": "/"}
    return client.post("/login", data=data, headers=headers)


# --- over HTTP -----------------------------------------------------------------------------------


def test_twenty_parallel_sign_ins_check_at_most_the_limit_and_never_fail(tmp_path: Path) -> None:
    home = _home_with_one_person(tmp_path)
    passwords = ["wrong-password"] * 19 + [PASSWORD]
    with serving(home) as server:
        clients = [httpx.Client(base_url=server.url, timeout=60) for _ in passwords]
        tokens = [csrf_of(c.get("/login").text) for c in clients]  # each with its own CSRF cookie
        start = threading.Barrier(len(passwords))

        def attempt(n: int) -> int:
            data = {"login": LOGIN, "password": passwords[n], "csrf_token": tokens[n], "next": "/"}
            start.wait()
            return clients[n].post("/login", data=data).status_code

        with ThreadPoolExecutor(len(passwords)) as pool:
            statuses = list(pool.map(attempt, range(len(passwords))))
        for client in clients:
            client.close()
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert set(statuses) <= {303, 401, 429, 503}, statuses
    failed = _failed_sign_ins(home)
    checked = [e for e in failed if e.detail["reason"].startswith("wrong")]
    assert len(failed) == statuses.count(401) + statuses.count(429) + statuses.count(503)
    # However many arrive at once, no more wrong passwords are tried than the limit allows.
    assert len(checked) <= LIMIT, statuses
    assert statuses.count(401) <= LIMIT - 1 and statuses.count(303) <= 1


def test_a_rotated_forwarded_address_neither_resets_the_lock_nor_reaches_the_audit(tmp_path: Path) -> None:
    home = _home_with_one_person(tmp_path)
    with serving(home) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        statuses = [
            _post_sign_in(
                client, f"nobody{n}", "wrong-password", **{"X-Forwarded-For": f"203.0.113.{n}"}
            ).status_code
            for n in range(LIMIT + 1)
        ]
        right = _post_sign_in(client, LOGIN, PASSWORD, **{"X-Forwarded-For": "198.51.100.9"})
    # One login each: only the address can lock, so the address counted is the caller's, not the header's.
    assert statuses == [401] * (LIMIT - 1) + [429, 429]
    assert right.status_code == 429
    addresses = {e.detail["address"] for e in _failed_sign_ins(home)}
    assert addresses == {"127.0.0.1"}


def test_a_named_proxy_is_believed(tmp_path: Path) -> None:
    home = _home_with_one_person(tmp_path)
    trusting = ("--forwarded-allow-ips", "127.0.0.1")
    with serving(home, options=trusting) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        _post_sign_in(client, "nobody", "wrong-password", **{"X-Forwarded-For": "203.0.113.7"})
    assert [e.detail["address"] for e in _failed_sign_ins(home)] == ["203.0.113.7"]


# --- in process ----------------------------------------------------------------------------------


def test_a_busy_process_answers_503_and_does_not_count_the_attempt(workspace: Workspace) -> None:
    with workspace.sessions() as session, session.begin():
        create_user(session, LOGIN, roles=OPEN, organisation=None, password=PASSWORD, actor="test")
    now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    lockout = Lockout(workspace.sessions, LIMIT, dt.timedelta(minutes=15), dt.timedelta(minutes=15))
    signin = PasswordSignIn(workspace.sessions, lockout, checks=1, wait_seconds=0.0)
    assert signin.checks.acquire(timeout=0)  # another sign-in is being checked
    try:
        assert signin.attempt(LOGIN, PASSWORD, "192.0.2.1", now) is Outcome.BUSY
    finally:
        signin.checks.release()
    with workspace.sessions() as session:
        assert session.scalar(select(func.count()).select_from(SignInFailure)) == 0
    assert signin.attempt(LOGIN, PASSWORD, "192.0.2.1", now) is Outcome.SIGNED_IN


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_parallel_reservations_never_pass_the_limit(backend: str, request: pytest.FixtureRequest) -> None:
    workspace: Workspace = request.getfixturevalue("workspace" if backend == "sqlite" else "pg_workspace")
    now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    lockout = Lockout(workspace.sessions, LIMIT, dt.timedelta(minutes=15), dt.timedelta(minutes=15))
    start = threading.Barrier(20)

    def reserve(n: int) -> bool:
        start.wait()
        return lockout.reserve([f"login:{LOGIN}", f"ip:192.0.2.{n}"], now) is not None

    with ThreadPoolExecutor(20) as pool:
        granted = sum(pool.map(reserve, range(20)))
    assert granted == LIMIT


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, pinned_now: dt.datetime) -> Iterator[DemoPortal]:
    yield from demo_portal(tmp_path_factory, "signin-hardening", pinned_now)


@pytest.fixture
def client(demo: DemoPortal) -> Iterator[TestClient]:
    with TestClient(create_app(demo[0])) as fresh:
        yield fresh


def _signed_in(client: TestClient, users: dict[str, Any], login: str) -> TestClient:
    answer = sign_in(client, login, users[login]["password"])
    assert answer.status_code == 303, answer.text  # type: ignore[attr-defined]
    return client


def _sessions(workspace: Workspace) -> int:
    with workspace.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(PortalSession)) or 0)


def test_the_sign_in_page_writes_no_session_row(client: TestClient, demo: DemoPortal) -> None:
    workspace, users = demo
    before = _sessions(workspace)
    for _ in range(3):
        page = client.get("/login")
        assert page.status_code == 200 and "pubdata_session" not in page.headers.get("set-cookie", "")
    assert client.get("/", follow_redirects=False).status_code == 303
    assert _sessions(workspace) == before
    # The form's token is the visitor's cookie: it signs in, and a token not from that cookie does not.
    token = csrf_of(client.get("/login").text)
    assert token == client.cookies.get("pubdata_csrf")
    form = {"login": "citizen", "password": users["citizen"]["password"], "next": "/"}
    other = client.post("/login", data={**form, "csrf_token": "x" * 43}, follow_redirects=False)
    assert other.status_code == 403 and 'data-error="csrf"' in other.text
    signed = client.post("/login", data={**form, "csrf_token": token}, follow_redirects=False)
    assert signed.status_code == 303
    assert _sessions(workspace) == before + 1


def test_a_sign_in_refused_while_busy_is_a_503_page(client: TestClient, demo: DemoPortal) -> None:
    checks = client.app.state.web.signin.checks  # type: ignore[attr-defined]
    held = [checks.acquire(timeout=0) for _ in range(WebSettings().password_checks)]
    try:
        answer = sign_in(client, "zj_dsj", demo[1]["zj_dsj"]["password"])
    finally:
        for _ in held:
            checks.release()
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"  # type: ignore[attr-defined]
    assert _signed_in(client, demo[1], "zj_dsj")


def test_pages_and_answers_with_personal_data_are_not_stored(client: TestClient, demo: DemoPortal) -> None:
    users = demo[1]
    _signed_in(client, users, "jx_zgh")
    answers = {"entry": client.get(f"/entries/{SOCIAL}")}
    token = csrf_of(client.get("/query").text)
    form = {"sql": f"SELECT * FROM {SOCIAL} LIMIT 5", "purpose": PARK_PURPOSE, "application": PARK_APP}
    answers["query"] = client.post("/query/run", data=form, headers={"X-CSRF-Token": token})
    body = {"sql": f"SELECT name FROM {SOCIAL} LIMIT 1", "application": PARK_APP, "purpose": PARK_PURPOSE}
    answers["api query"] = client.post("/api/v1/query", json=body, headers=bearer(users["jx_zgh"]["token"]))
    with demo[0].sessions() as session:
        asked = session.scalars(select(SharingRequest).where(SharingRequest.state == "submitted")).first()
        assert asked is not None, "the demo has submitted sharing requests"
    _signed_in(client, users, asked.requested_by)
    answers["request"] = client.get(f"/requests/{asked.id}")
    _signed_in(client, users, "zj_auditor")
    token = csrf_of(client.get("/audit").text)
    who = {"kind": "id_number", "number": "110101190001011234", "csrf_token": token}
    answers["who accessed"] = client.post("/audit/who-accessed", data=who)
    for name, answer in answers.items():
        assert answer.status_code == 200, (name, answer.text[:300])
        assert answer.headers["cache-control"] == "no-store", name
    assert "no-store" not in client.get("/static/css/portal.css").headers.get("cache-control", "")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/requests/{HUGE}"),
        ("GET", f"/incidents/{HUGE}"),
        ("GET", f"/objections/{HUGE}"),
        ("GET", "/requests/2147483648"),
        ("GET", "/requests/0"),
        ("GET", "/requests/１２"),
        ("POST", f"/requests/{HUGE}/items/1/check"),
        ("POST", f"/requests/1/items/{HUGE}/check"),
        ("POST", f"/cart/items/{HUGE}/remove"),
    ],
)
def test_a_number_past_the_bound_is_a_404_page(
    client: TestClient, demo: DemoPortal, method: str, path: str
) -> None:
    _signed_in(client, demo[1], "jx_zgh")
    token = csrf_of(client.get("/").text)
    answer = client.request(method, path, headers={"X-CSRF-Token": token})
    assert answer.status_code == 404 and 'data-error="not_found"' in answer.text, answer.text[:300]
