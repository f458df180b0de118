"""Deny by default: a token of every role × every route of the app × every kind of entry, each call
checked against one explicit table of expected answers (REQ-4, 5, 14, 17).

Routes are enumerated from the app itself, so a route added without a line in `ROUTE_RULES` fails
`test_every_route_has_an_authorisation_rule`. Two kinds of route exist:

- ``public``: catalogue metadata and service pages. The catalogue is published so that agencies can
  find what exists and apply for it (REQ-10, REQ-14: sharing is the rule, and a restricted or
  not-shared entry must *state* its conditions) — it carries names, fields, levels, versions and
  masked quality reports, never a row. Any caller gets it, with or without a token, and
  `test_public_routes_never_carry_rows` checks that no stored value of a person leaks through them.
- ``gateway``: rows. A bearer token is required; any credential problem is the same 401; then the
  token's scope, the caller's organisation and role, the application, the purpose and the entry's
  class decide, and only the combinations in `GATEWAY_ALLOWED` are answered.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow.compute as pc
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway_support import OUTPATIENT, PARK_APP, PARK_PURPOSE, SOCIAL, bearer, demo_users, raw_rows
from pubdata.api.app import create_app
from pubdata.catalog.service import retire_entry
from pubdata.clock import Clock
from pubdata.db.models import AuditEvent
from pubdata.demo.build import build_demo
from pubdata.gateway.identity import create_user, deactivate_user, issue_token, revoke_token
from pubdata.gateway.roles import Role, Scope
from pubdata.workspace import Workspace

#: One entry of each class a decision distinguishes.
ENTRIES = {
    "unconditional": "scjg_enterprise_register",
    "restricted, granted to the consumer": SOCIAL,
    "restricted, no grant (the provider's own)": "gat_population",
    "not shared": OUTPATIENT,
    "retired": "jyt_labour_education",
}
U, G, R, N, X = ENTRIES.values()

#: The application and purpose each demo account states (the consumer's and the provider's own).
CALLS = {
    "zj_gat": ("gat_population_service", "人口信息核验"),
    "jx_zgh": (PARK_APP, PARK_PURPOSE),
}
DEFAULT_CALL = (PARK_APP, PARK_PURPOSE)

#: (login, entry code) → 200: every other pair must be refused with the error in `GATEWAY_REFUSED`.
GATEWAY_ALLOWED = {
    ("zj_gat", U),  # unconditional: any government body, de-identified by default (REQ-27)
    ("zj_gat", R),  # its own entry (provider)
    ("jx_zgh", U),
    ("jx_zgh", G),  # through its grant, for the grant's purpose (REQ-17)
}
#: login → the error code of its refusals: a token without the query scope is `forbidden`; a role
#: or organisation that no rule lets read, or an entry class that refuses, is `denied`.
GATEWAY_REFUSED = {
    "zj_dsj": "denied",  # competent department: holds neither the consumer nor the provider role
    "zj_gat": "denied",
    "zj_rst": "denied",  # the social-insurance provider states the union's application: not its own
    "jx_zgh": "denied",
    "citizen": "denied",  # a private person: shared data is for public bodies (no organisation)
    "zj_security": "forbidden",  # tokens scoped to catalogue and audit reading only
    "zj_auditor": "forbidden",
    "zj_admin": "forbidden",
}

#: Objection routes: a token with the workflow scope, then the party each step needs
#: (tests/test_objections*.py).
OBJECTION_ROUTES = [
    (method, f"/api/v1/objections{path}")
    for method, path in [
        ("POST", ""), ("GET", ""), ("GET", "/{objection_id}"), ("POST", "/{objection_id}/accept"),
        ("POST", "/{objection_id}/reject"), ("POST", "/{objection_id}/verify-corrected"),
        ("POST", "/{objection_id}/verify-upheld"), ("POST", "/{objection_id}/archive"),
    ]
]  # fmt: skip

#: Every route the app serves, (method, path) → "public", "gateway" (see the module docstring),
#: "staff-details" (public counts; row examples for staff of the entry: tests/test_catalog_leaks.py) or
#: "workflow" (role checks of the workflow, tested with it).
ROUTE_RULES = {
    ("GET", "/healthz"): "public",
    ("GET", "/openapi.json"): "public",
    ("GET", "/docs"): "public",
    ("GET", "/docs/oauth2-redirect"): "public",
    ("GET", "/redoc"): "public",
    ("GET", "/api/entries"): "public",
    ("GET", "/api/entries/{code}"): "public",
    ("GET", "/api/entries/{code}/versions"): "public",
    ("GET", "/api/entries/{code}/versions/{version}/quality"): "staff-details",
    ("GET", "/api/organisations"): "public",
    ("POST", "/api/v1/query"): "gateway",
    ("GET", "/api/v1/entries/{code}/rows"): "gateway",
    **{route: "workflow" for route in OBJECTION_ROUTES},
    # Sharing requests: every step's role and organisation in tests/test_requests_states.py.
    ("POST", "/api/v1/requests"): "workflow",
    ("GET", "/api/v1/requests"): "workflow",
    ("GET", "/api/v1/requests/waiting"): "workflow",
    ("GET", "/api/v1/requests/{request_id}"): "workflow",
    ("POST", "/api/v1/requests/{request_id}/items"): "workflow",
    ("POST", "/api/v1/requests/{request_id}/submit"): "workflow",
    ("POST", "/api/v1/requests/{request_id}/items/{item_id}/{action}"): "workflow",
    # Usage figures are counts, never rows (REQ-23); history and incidents: tests/test_workflow_api.py.
    ("GET", "/api/v1/entries/{code}/usage"): "public",
    ("GET", "/api/v1/organisations/{ref}/responsible"): "workflow",
    ("PUT", "/api/v1/organisations/{ref}/responsible"): "workflow",
    ("GET", "/api/v1/incidents"): "workflow",
    ("POST", "/api/v1/incidents"): "workflow",
    ("GET", "/api/v1/incidents/{incident_id}"): "workflow",
    ("POST", "/api/v1/incidents/{incident_id}/{action}"): "workflow",
    # Notifications: the caller's own only (tests/test_inbox.py).
    ("GET", "/api/v1/notifications"): "workflow",
    ("POST", "/api/v1/notifications/read"): "workflow",
}


#: Paths of the API and its documentation; everything else the app serves is the portal.
API_PATHS = ("/api/", "/healthz", "/docs", "/redoc", "/openapi.json")


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every API route, through the routers FastAPI wraps on inclusion.

    The portal's pages (HTML, with their own role checks proven in test_web_http.py) and mounted
    static files are not API routes.
    """
    found: set[tuple[str, str]] = set()
    pending: list[Any] = list(app.routes)
    while pending:
        route = pending.pop()
        prefix = route.prefix if isinstance(route, _Prefixed) else ""
        route = route.route if isinstance(route, _Prefixed) else route
        if hasattr(route, "original_router"):
            prefix += route.include_context.prefix
            pending += [_Prefixed(prefix, r) for r in route.original_router.routes]
            continue
        path = prefix + getattr(route, "path", "")
        if not hasattr(route, "methods") or not path.startswith(API_PATHS):
            continue
        found |= {(m, path) for m in route.methods - {"HEAD"}}
    return found


@dataclass(frozen=True)
class _Prefixed:
    prefix: str
    route: Any


@dataclass(frozen=True)
class Bad:
    """Credentials that must all get the same 401."""

    headers: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, pinned_clock: Clock) -> Path:
    path = tmp_path_factory.mktemp("matrix") / "home"
    build_demo(path, scale=0.02, clock=pinned_clock)
    workspace = Workspace.open(path, clock=pinned_clock)
    with workspace.sessions() as session, session.begin():
        retire_entry(session, X, "test")
    return path


@pytest.fixture(scope="module")
def workspace(home: Path, pinned_clock: Clock) -> Workspace:
    return Workspace.open(home, clock=pinned_clock)


@pytest.fixture(scope="module")
def client(workspace: Workspace) -> Iterator[TestClient]:
    with TestClient(create_app(workspace)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def tokens(home: Path) -> dict[str, str]:
    return {login: u["token"] for login, u in demo_users(home).items()}


@pytest.fixture(scope="module")
def bad(workspace: Workspace, tokens: dict[str, str]) -> Bad:
    settings = workspace.settings.default
    long_ago = workspace.clock() - dt.timedelta(days=3)
    with workspace.sessions() as session, session.begin():
        expired = issue_token(session, "jx_zgh", [Scope.QUERY], 1, "test", settings, now=long_ago)
        revoked = issue_token(
            session, "jx_zgh", [Scope.QUERY, Scope.EXPORT], 30, "test", settings, now=workspace.clock()
        )
        revoke_token(session, revoked.row.public_id, "test", now=workspace.clock())
        create_user(
            session,
            "jx.left",
            roles=[Role.CONSUMER],
            organisation="嘉兴市总工会",
            password=None,
            actor="test",
        )
        left = issue_token(session, "jx.left", [Scope.QUERY], 30, "test", settings, now=workspace.clock())
        deactivate_user(session, "jx.left", "test")
    good = tokens["jx_zgh"]
    return Bad(
        {
            "missing": {},
            "empty": {"Authorization": ""},
            "scheme only": {"Authorization": "Bearer"},
            "malformed": {"Authorization": "Bearer not-a-token"},
            "wrong scheme": {"Authorization": f"Basic {good}"},
            "one character changed": bearer(good[:-1] + ("A" if good[-1] != "A" else "B")),
            "unknown id": bearer("pd_00000000_" + good.rsplit("_", 1)[1]),
            "expired": bearer(expired.token),
            "revoked": bearer(revoked.token),
            "deactivated user": bearer(left.token),
        }
    )


def call(
    client: TestClient, method: str, path: str, code: str, headers: dict[str, str], login: str = ""
) -> httpx.Response:
    """One call of a route for `code`, stating the caller's usual application and purpose."""
    application, purpose = CALLS.get(login, DEFAULT_CALL)
    url = path.replace("{code}", code).replace("{version}", "1")
    if method == "POST":
        body = {"sql": f"SELECT * FROM {code} LIMIT 3", "purpose": purpose, "application": application}
        answer: httpx.Response = client.post(url, json=body, headers=headers)
    else:
        params = {"purpose": purpose, "application": application, "limit": 3} if "/v1/" in url else {}
        answer = client.get(url, params=params, headers=headers)
    return answer


def newest_event(workspace: Workspace) -> AuditEvent:
    with workspace.sessions() as session:
        event = session.query(AuditEvent).order_by(AuditEvent.id.desc()).first()
        assert event is not None
        return event


# --- the tests --------------------------------------------------------------------------------


@pytest.mark.req("REQ-5", "one-gateway")
def test_every_route_has_an_authorisation_rule(client: TestClient) -> None:
    served = app_routes(client.app)  # type: ignore[arg-type]
    assert served == set(ROUTE_RULES), f"routes without a rule: {served - set(ROUTE_RULES)}"
    documented = {
        (m.upper(), p) for p, item in client.get("/openapi.json").json()["paths"].items() for m in item
    }
    assert documented <= served


@pytest.mark.req("REQ-4", "roles")
@pytest.mark.req("REQ-5", "one-gateway", "gateway-audit")
@pytest.mark.req("REQ-14", "sharing-classes")
@pytest.mark.req("REQ-17", "refuse-outside", "audit-refusal")
@pytest.mark.parametrize("route", [r for r, rule in ROUTE_RULES.items() if rule == "gateway"], ids=" ".join)
def test_gateway_routes_answer_only_what_a_rule_allows(
    route: tuple[str, str], client: TestClient, tokens: dict[str, str], workspace: Workspace
) -> None:
    method, path = route
    seen = {}
    for login, token in tokens.items():
        for kind, code in ENTRIES.items():
            before = newest_event(workspace).id
            answer = call(client, method, path, code, bearer(token), login)
            seen[(login, kind)] = answer.status_code
            event = newest_event(workspace)
            assert event.id > before and event.actor == login, "every gateway call is audited"
            if (login, code) in GATEWAY_ALLOWED:
                assert answer.status_code == 200, (login, kind, answer.text)
                assert event.outcome == "ok" and event.target == code
            else:
                assert answer.status_code == 403, (login, kind, answer.text)
                assert answer.json()["error"] == GATEWAY_REFUSED[login], (login, kind, answer.text)
                assert event.outcome == "refused" and event.detail["reason"] == answer.json()["detail"]
    assert sum(status == 200 for status in seen.values()) == len(GATEWAY_ALLOWED)


@pytest.mark.parametrize("route", [r for r, rule in ROUTE_RULES.items() if rule == "gateway"], ids=" ".join)
def test_any_credential_problem_is_the_same_401(
    route: tuple[str, str], client: TestClient, bad: Bad, workspace: Workspace
) -> None:
    method, path = route
    bodies = set()
    for why, headers in bad.headers.items():
        answer = call(client, method, path, SOCIAL, headers, "jx_zgh")
        assert answer.status_code == 401, (why, answer.text)
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        bodies.add(answer.content)
        event = newest_event(workspace)
        assert (event.actor, event.action, event.outcome) == ("anonymous", "token.authenticate", "refused")
    assert bodies == {
        b'{"error":"not_authenticated","detail":"not authenticated: unknown, expired or revoked credentials"}'
    }


@pytest.mark.parametrize("route", [r for r, rule in ROUTE_RULES.items() if rule == "public"], ids=" ".join)
def test_public_routes_answer_everyone_the_same(
    route: tuple[str, str], client: TestClient, tokens: dict[str, str], bad: Bad
) -> None:
    method, path = route
    callers = {"anonymous": {}, **{login: bearer(t) for login, t in tokens.items()}, **bad.headers}
    codes = ENTRIES.values() if "{code}" in path else [""]
    for code in codes:
        answers = {who: call(client, method, path, code, headers) for who, headers in callers.items()}
        statuses = {who: a.status_code for who, a in answers.items()}
        assert set(statuses.values()) == {200}, (path, code, statuses)
        if path.startswith("/api/"):
            assert len({a.content for a in answers.values()}) == 1, (path, code)


@pytest.mark.parametrize(
    "route", [r for r, rule in ROUTE_RULES.items() if rule == "staff-details"], ids=" ".join
)
def test_staff_detail_routes_answer_everyone_else_the_same(
    route: tuple[str, str], client: TestClient, tokens: dict[str, str]
) -> None:
    """Anyone may read the counts; whoever is not staff of the entry reads what anonymous reads."""
    method, path = route
    callers = {"anonymous": {}, **{login: bearer(t) for login, t in tokens.items()}}
    for code in ENTRIES.values():
        answers = {who: call(client, method, path, code, headers) for who, headers in callers.items()}
        assert {a.status_code for a in answers.values()} == {200}, (path, code)
        plain = {a.content for a in answers.values() if not a.json()["details"]}
        assert plain == {answers["anonymous"].content}, (path, code)


def test_public_routes_never_carry_rows(client: TestClient, workspace: Workspace) -> None:
    stored: set[str] = set()
    for code in (G, R, N):
        raw = raw_rows(workspace, code)
        stored |= set(pc.cast(raw["id_number"], "string").to_pylist())
    assert len(stored) > 100
    texts = [client.get("/api/entries", params={"limit": 200}).text, client.get("/api/organisations").text]
    for code in ENTRIES.values():
        for path in (
            "/api/entries/{code}",
            "/api/entries/{code}/versions",
            "/api/entries/{code}/versions/1/quality",
        ):
            texts.append(client.get(path.replace("{code}", code)).text)
    numbers = {n for text in texts for n in re.findall(r"(?<![\dX])\d{17}[\dX](?![\dX])", text)}
    assert not numbers & stored
