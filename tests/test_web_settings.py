"""The portal's catalogue facets and keyset pages, the audit subject search (REQ-41) and the
organisation settings page (applications, tokens shown once, revocation), over HTTP."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway_support import PARK_APP, PARK_PURPOSE, SOCIAL, bearer
from pubdata import audit
from pubdata.api.app import create_app
from pubdata.db.models import Application, AuditEvent, PortalSession
from pubdata.web import pages_catalog
from pubdata.workspace import Workspace
from web_support import DemoPortal, csrf_of, demo_portal, sign_in

UNION_ENTRY = "jxzgh_park_members"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, pinned_now: dt.datetime) -> Iterator[DemoPortal]:
    yield from demo_portal(tmp_path_factory, "web-settings", pinned_now)


@pytest.fixture
def client(demo: tuple[Workspace, dict[str, Any]]) -> Iterator[TestClient]:
    with TestClient(create_app(demo[0])) as fresh:
        yield fresh


def signed_in(client: TestClient, users: dict[str, Any], login: str) -> TestClient:
    answer = sign_in(client, login, users[login]["password"])
    assert answer.status_code == 303, answer.text  # type: ignore[attr-defined]
    return client


def events(workspace: Workspace, action: str) -> list[AuditEvent]:
    with workspace.sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def options(html: str, facet: str) -> dict[str, int]:
    block = html[html.index(f'data-facet="{facet}"') :]
    block = block[: block.index("</select>")]
    return {v: int(n) for v, n in re.findall(r'<option value="([^"]+)" data-count="(\d+)"', block)}


def total(html: str) -> int:
    found = re.search(r'data-total="(\d+)"', html)
    assert found, html[:500]
    return int(found.group(1))


# --- catalogue ------------------------------------------------------------------------------------


def test_each_facet_count_is_what_choosing_it_gives(client: TestClient, demo: Any) -> None:
    signed_in(client, demo[1], "zj_dsj")
    html = client.get("/catalog").text
    everything = total(html)
    checked = 0
    for facet in ("provider", "share_class", "open_class", "level", "overdue", "region", "domain"):
        counts = options(html, facet)
        if facet in ("share_class", "overdue"):
            assert sum(counts.values()) == everything, facet
        for value, count in counts.items():
            assert total(client.get("/catalog", params={facet: value}).text) == count, (facet, value)
            checked += 1
    assert checked > 10
    narrowed = client.get("/catalog", params={"q": "社会保险", "share_class": "restricted"}).text
    assert total(narrowed) >= 1 and SOCIAL in narrowed
    assert sum(options(narrowed, "share_class").values()) == total(client.get("/catalog?q=社会保险").text)


def test_keyset_pages_cover_the_catalogue_once_in_order(
    client: TestClient, demo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages_catalog, "PAGE_SIZE", 4)
    signed_in(client, demo[1], "zj_dsj")
    html = client.get("/catalog").text
    want = total(html)
    seen: list[str] = []
    pages = 0
    while True:
        seen += re.findall(r'<a href="/entries/([^"]+)">', html)
        pages += 1
        nxt = re.search(r'id="next-page" href="([^"]+)"', html)
        if not nxt:
            break
        assert "after=" in nxt.group(1)
        html = client.get(nxt.group(1).replace("&amp;", "&"), headers={"HX-Request": "true"}).text
        assert 'id="first-page"' in html and "<html" not in html  # htmx gets the block only
    assert pages >= 2 and len(seen) == want and seen == sorted(seen) and len(set(seen)) == want


def test_a_three_character_chinese_query_finds_the_entry(client: TestClient, demo: Any) -> None:
    signed_in(client, demo[1], "jx_zgh")
    html = client.get("/catalog", params={"q": "社会保"}).text
    assert f'href="/entries/{SOCIAL}"' in html


# --- who accessed (REQ-41) -------------------------------------------------------------------------


def served_number(client: TestClient, users: dict[str, Any]) -> str:
    """An identity number the 嘉兴 union was served as stored (its own entry), through the API."""
    body = {"sql": f"SELECT id_number FROM {UNION_ENTRY} ORDER BY 1 LIMIT 2", "application": PARK_APP,
            "purpose": PARK_PURPOSE}  # fmt: skip
    answer = client.post("/api/v1/query", json=body, headers=bearer(users["jx_zgh"]["token"]))
    assert answer.status_code == 200, answer.text
    number: str = answer.json()["rows"][0][0]
    assert "*" not in number
    return number


@pytest.mark.req("REQ-41", "subject-access")
def test_auditor_finds_who_accessed_a_number_without_it_being_echoed(client: TestClient, demo: Any) -> None:
    workspace, users = demo
    number = served_number(client, users)
    signed_in(client, users, "zj_auditor")
    assert client.get("/audit/who-accessed").status_code == 405, "never a GET: the number stays out of URLs"
    token = csrf_of(client.get("/audit").text)
    before = len(events(workspace, "audit.who_accessed"))
    answer = client.post(
        "/audit/who-accessed", data={"kind": "id_number", "number": number.lower(), "csrf_token": token}
    )
    assert answer.status_code == 200
    assert 'data-actor="jx_zgh"' in answer.text and UNION_ENTRY in answer.text
    assert number not in answer.text and number.lower() not in answer.text
    looked = events(workspace, "audit.who_accessed")
    assert len(looked) == before + 1
    assert looked[-1].actor == "zj_auditor" and looked[-1].target == "id_number"
    assert looked[-1].detail["subject_hash"] == audit.subject_hash(workspace.home, number)
    assert number not in str(looked[-1].detail) and looked[-1].detail["events"] >= 1
    with workspace.sessions() as db:
        kept = [(r.login, r.csrf_token) for r in db.scalars(select(PortalSession))]
    assert kept and all(number not in str(row) for row in kept), "the session keeps no searched number"
    nobody = client.post("/audit/who-accessed", data={"kind": "id_number", "number": "110101190001011234",
                                                      "csrf_token": token})  # fmt: skip
    assert 'data-events="0"' in nobody.text
    bad = client.post("/audit/who-accessed", data={"kind": "name", "number": "x", "csrf_token": token})
    assert 'data-problem="invalid"' in bad.text


def test_subject_search_is_for_auditors_only_and_needs_the_forms_token(client: TestClient, demo: Any) -> None:
    signed_in(client, demo[1], "jx_zgh")
    token = csrf_of(client.get("/").text)
    form = {"kind": "id_number", "number": "110101190001011234"}
    assert client.post("/audit/who-accessed", data={**form, "csrf_token": token}).status_code == 403
    signed_in(client, demo[1], "zj_auditor")
    assert client.post("/audit/who-accessed", data=form).status_code == 403


# --- organisation settings -------------------------------------------------------------------------


def query_with(client: TestClient, token: str) -> int:
    body = {"sql": f"SELECT name FROM {SOCIAL} LIMIT 1", "application": PARK_APP, "purpose": PARK_PURPOSE}
    return client.post("/api/v1/query", json=body, headers=bearer(token)).status_code


def test_a_token_is_shown_once_works_and_stops_when_revoked(client: TestClient, demo: Any) -> None:
    workspace, users = demo
    signed_in(client, users, "jx_zgh")
    page = client.get("/org").text
    assert 'value="admin"' not in page and 'value="audit:read"' not in page, "scopes the role may not hold"
    token = csrf_of(page)
    issued = client.post(
        "/org/tokens", data={"scope": ["query"], "days": "7", "name": "脚本", "csrf_token": token}
    )
    assert issued.status_code == 200 and issued.headers["cache-control"] == "no-store"
    secret = re.search(r'id="new-token-value">([^<]+)<', issued.text)
    assert secret, issued.text
    value = secret.group(1)
    public_id = value.split("_")[1]
    listing = client.get("/org").text
    assert value not in listing and f'data-token="{public_id}" data-state="active"' in listing
    assert query_with(client, value) == 200
    revoked = client.post(
        f"/org/tokens/{public_id}/revoke", data={"csrf_token": token}, follow_redirects=False
    )
    assert revoked.status_code == 303
    assert query_with(client, value) == 401
    assert f'data-token="{public_id}" data-state="revoked"' in client.get("/org").text
    assert [e.target for e in events(workspace, "token.revoke")][-1] == public_id


def test_a_scope_beyond_the_role_is_refused_and_audited(client: TestClient, demo: Any) -> None:
    workspace, users = demo
    signed_in(client, users, "jx_zgh")
    token = csrf_of(client.get("/org").text)
    answer = client.post("/org/tokens", data={"scope": ["admin"], "days": "7", "csrf_token": token})
    assert answer.status_code == 409 and 'id="org-error"' in answer.text and "REQ-4" in answer.text
    assert 'id="new-token-value"' not in answer.text
    refused = [e for e in events(workspace, "token.issue") if e.outcome == "refused"]
    assert refused and refused[-1].target == "jx_zgh"


def test_someone_elses_token_cannot_be_revoked(client: TestClient, demo: Any) -> None:
    users = demo[1]
    other = users["zj_gat"]["token"].split("_")[1]
    signed_in(client, users, "jx_zgh")
    token = csrf_of(client.get("/org").text)
    assert client.post(f"/org/tokens/{other}/revoke", data={"csrf_token": token}).status_code == 404
    assert query_with(client, users["zj_gat"]["token"]) != 401


def test_forms_without_the_token_change_nothing(client: TestClient, demo: Any) -> None:
    workspace, users = demo
    signed_in(client, users, "jx_zgh")
    before = len(events(workspace, "token.issue"))
    assert client.post("/org/tokens", data={"scope": ["query"], "days": "7"}).status_code == 403
    app = {"code": "forged_app", "name": "x", "purpose": "p", "system_owner": "o"}
    assert client.post("/org/applications", data=app).status_code == 403
    assert len(events(workspace, "token.issue")) == before
    with workspace.sessions() as session:
        assert session.scalar(select(Application).where(Application.code == "forged_app")) is None


def test_applications_of_the_own_organisation_and_all_for_the_admin(client: TestClient, demo: Any) -> None:
    workspace, users = demo
    signed_in(client, users, "jx_zgh")
    page = client.get("/org").text
    assert (
        f'data-application="{PARK_APP}"' in page and 'data-application="gat_population_service"' not in page
    )
    token = csrf_of(page)
    form = {"code": "jx_member_care", "name": "会员关怀", "purpose": "困难职工帮扶", "system_owner": "吴佳慧",
            "organisation": "浙江省公安厅", "csrf_token": token}  # fmt: skip
    assert client.post("/org/applications", data=form, follow_redirects=False).status_code == 303
    with workspace.sessions() as session:
        made = session.scalars(select(Application).where(Application.code == "jx_member_care")).one()
        assert made.organisation.name == "嘉兴市总工会", "a non-admin registers for its own organisation only"
        assert made.system_owner == "吴佳慧"
    assert 'data-application="jx_member_care"' in client.get("/org").text
    missing = client.post("/org/applications", data={**form, "code": "jx_no_purpose", "purpose": " "})
    assert missing.status_code == 409 and "REQ-15" in missing.text
    signed_in(client, users, "zj_admin")
    admin_page = client.get("/org").text
    assert f'data-application="{PARK_APP}"' in admin_page
    assert 'data-application="gat_population_service"' in admin_page
    signed_in(client, users, "citizen")
    assert client.get("/org").status_code == 200
    citizen = {**form, "code": "citizen_app", "csrf_token": csrf_of(client.get("/org").text)}
    assert client.post("/org/applications", data=citizen).status_code == 403
