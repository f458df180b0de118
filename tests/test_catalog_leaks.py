"""Smaller leaks of the public surfaces: server paths and quality examples in the catalogue, a
draft entry's existence through the gateway, and a purpose nobody stated in the audit of a preview.

The catalogue routes are anonymous. A version names the file it was loaded from, and its quality
report keeps the file's path, its quarantine file and masked examples of bad values: none of that
may leave except the file's name, and the examples only to staff of the entry. The gateway answers
a query of a draft exactly as one of an entry that does not exist, as the catalogue does. Opening
an entry page shows sample rows through the gateway: that is audited as a preview, under no purpose,
and is not counted as use.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pubdata.api.app import create_app
from pubdata.catalog import service
from pubdata.catalog.specs import entry_from_dict, organisation_from_dict
from pubdata.db.models import AuditEvent, DatasetVersion, UsageDaily
from pubdata.gateway.engine import SandboxedEngine
from pubdata.gateway.grants import grant_access
from pubdata.gateway.identity import create_application, create_user, issue_token, local_principal
from pubdata.gateway.roles import Role, Scope
from pubdata.identifiers import make_id_number, make_uscc
from pubdata.ingest.pipeline import ingest_file
from pubdata.web.viewer import sample, visible_entry
from pubdata.workspace import Workspace
from web_support import sign_in

HRSS = make_uscc("11", "330000", "00260001")
SAMR = make_uscc("11", "330000", "00260002")
ENROL, DRAFT = "rs_enrol", "jx_union"
PASSWORD = "correct horse battery staple 9"


def _org(name: str, short: str, uscc: str) -> dict[str, Any]:
    return {
        "name": name,
        "short_name": short,
        "org_type": "state_organ",
        "uscc": uscc,
        "division_code": "330000",
        "head_name": "负责人",
        "security_officer_name": "安全员",
    }


def _entry(code: str, provider: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "code": code,
        "name": f"{code}名称",
        "provider": provider,
        "abstract": "摘要",
        "category_class": "综合",
        "update_cycle": "monthly",
        "share_class": "unconditional",
        "open_class": "prohibited",
        "fields": fields,
    }


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """A published entry loaded twice from files under the home directory (the second with a bad
    identity number, quarantined), a draft, and a token for a provider and a consumer."""
    made = Workspace.init(tmp_path_factory.mktemp("leaks") / "pubdata-home")
    person = {"name": "person_id", "title": "身份证号", "level": 2, "pii_kind": "id_number",
              "validator": "id_number"}  # fmt: skip
    with made.sessions() as session, session.begin():
        service.register_organisation(
            session, organisation_from_dict(_org("省人社厅全称", "省人社厅", HRSS)), "t"
        )
        samr = organisation_from_dict(_org("省市场监管局全称", "省市场监管局", SAMR))
        service.register_organisation(session, samr, "t")
        settings = made.settings.default
        service.create_entry(session, entry_from_dict(_entry(ENROL, "省人社厅", [person])), "t", settings)
        service.create_entry(session, entry_from_dict(_entry(DRAFT, "省人社厅", [person])), "t", settings)
        service.publish_entry(session, ENROL, "t", settings)
        create_user(
            session, "hrss", roles=[Role.PROVIDER], organisation="省人社厅", password=PASSWORD, actor="t"
        )
        create_user(
            session, "samr", roles=[Role.CONSUMER], organisation="省市场监管局", password=PASSWORD, actor="t"
        )
        create_application(session, "samr_app", name="监管", organisation="省市场监管局", purpose="市场监管",
                           system_owner="科室", actor="t")  # fmt: skip
    folder = made.home / "files"
    folder.mkdir()
    for i, bad in enumerate((False, True)):
        good = [make_id_number("330102", "19800101", 2 * n + 1) for n in range(20)]
        if bad:
            good[0] = good[0][:-1] + ("1" if good[0][-1] == "0" else "0")
        path = folder / f"enrol-{i}.csv"
        path.write_text("身份证号\n" + "\n".join(good) + "\n", "utf-8")
        ingest_file(made, ENROL, path, operator="t", policy="quarantine")
    yield made
    made.engine.dispose()


@pytest.fixture(scope="module")
def tokens(workspace: Workspace) -> dict[str, str]:
    with workspace.sessions() as session, session.begin():
        settings = workspace.settings.default
        return {
            login: issue_token(session, login, [Scope.CATALOG_READ, Scope.QUERY], 30, "t", settings).token
            for login in ("hrss", "samr")
        }


@pytest.fixture(scope="module")
def client(workspace: Workspace) -> Iterator[TestClient]:
    with TestClient(create_app(workspace)) as test_client:
        yield test_client


def _stored(workspace: Workspace) -> list[DatasetVersion]:
    with workspace.sessions() as session:
        return sorted(session.query(DatasetVersion).all(), key=lambda v: v.version)


def _leaks(text: str, home: Path) -> list[str]:
    """Absolute paths, the home directory's name and full file paths found in an answer."""
    patterns = [
        re.escape(str(home)),
        re.escape(str(Path.home())) + "/",
        "pubdata-home",
        r"/[^\s\"'<>]*\.(csv|parquet)",
    ]
    return [found.group(0) for p in patterns if (found := re.search(p, text))]


def test_anonymous_catalogue_answers_carry_no_path_and_no_quality_example(
    workspace: Workspace, client: TestClient
) -> None:
    stored = _stored(workspace)
    # What is kept is there to leak: full paths and a masked example of the bad identity number.
    last = stored[-1].quality
    assert str(workspace.home) in stored[-1].source_file
    assert "/" in last["quarantine_file"] and any(c["examples"] for c in last["columns"].values())
    example = next(e["value"] for c in last["columns"].values() for e in c["examples"])
    routes = ["/api/entries", f"/api/entries/{ENROL}", f"/api/entries/{ENROL}/versions", "/api/organisations",
              f"/api/v1/entries/{ENROL}/usage"]  # fmt: skip
    routes += [f"/api/entries/{ENROL}/versions/{v.version}/quality" for v in stored]
    for route in routes:
        answer = client.get(route)
        assert answer.status_code == 200, (route, answer.text)
        assert _leaks(answer.text, workspace.home) == [], route
        assert example not in answer.text, route
    quality = client.get(f"/api/entries/{ENROL}/versions/{stored[-1].version}/quality").json()
    assert quality["details"] is False
    assert quality["report"]["file"] == "enrol-1.csv" and quality["version"]["source_file"] == "enrol-1.csv"
    columns = quality["report"]["columns"].values()
    assert all(c["examples"] == [] for c in columns) and any(c["problems"] for c in columns)
    # The pages are for signed-in people: an anonymous visitor is sent to sign in, with nothing else.
    for page in ("/", "/catalog", f"/entries/{ENROL}"):
        answer = client.get(page, follow_redirects=False)
        assert answer.status_code in (302, 303, 307), page
        assert _leaks(answer.text, workspace.home) == [] and example not in answer.text


def test_quality_examples_go_to_staff_of_the_entry_and_paths_to_nobody(
    workspace: Workspace, client: TestClient, tokens: dict[str, str]
) -> None:
    version = _stored(workspace)[-1].version
    route = f"/api/entries/{ENROL}/versions/{version}/quality"
    provider = client.get(route, headers={"Authorization": f"Bearer {tokens['hrss']}"})
    assert provider.status_code == 200 and provider.json()["details"] is True
    examples = [e for c in provider.json()["report"]["columns"].values() for e in c["examples"]]
    assert examples and {e["file"] for e in examples} == {"enrol-1.csv"}
    assert _leaks(provider.text, workspace.home) == []
    consumer = client.get(route, headers={"Authorization": f"Bearer {tokens['samr']}"})
    assert consumer.status_code == 200 and consumer.json()["details"] is False
    assert all(c["examples"] == [] for c in consumer.json()["report"]["columns"].values())
    assert client.get(route, headers={"Authorization": "Bearer nonsense"}).status_code == 401
    # Signed-in pages name no server path either.
    signed = TestClient(client.app)
    assert sign_in(signed, "hrss", PASSWORD).status_code == 303  # type: ignore[attr-defined]
    for page in ("/", "/catalog", f"/entries/{ENROL}", f"/entries/{ENROL}/usage.json"):
        answer = signed.get(page)
        assert answer.status_code == 200, page
        assert _leaks(answer.text, workspace.home) == [], page


def _refusal(client: TestClient, token: str, code: str) -> tuple[int, bytes, bytes]:
    headers = {"Authorization": f"Bearer {token}"}
    body = {"sql": f"SELECT * FROM {code}", "purpose": "市场监管", "application": "samr_app"}
    query = client.post("/api/v1/query", json=body, headers=headers)
    params = {"purpose": "市场监管", "application": "samr_app"}
    rows = client.get(f"/api/v1/entries/{code}/rows", params=params, headers=headers)
    assert query.status_code == rows.status_code
    return query.status_code, query.content, rows.content


def test_the_gateway_answers_a_draft_exactly_like_an_unknown_entry(
    client: TestClient, tokens: dict[str, str]
) -> None:
    draft = _refusal(client, tokens["samr"], DRAFT)
    unknown = _refusal(client, tokens["samr"], "no_such_entry")
    assert draft[0] == unknown[0] == 403
    assert draft[1] == unknown[1].replace(b"no_such_entry", DRAFT.encode())
    assert draft[2] == unknown[2].replace(b"no_such_entry", DRAFT.encode())
    said = json.loads(draft[1])
    assert (said["error"], said["detail"]) == ("denied", f"no catalogue entry '{DRAFT}'")
    # The catalogue agrees.
    assert client.get(f"/api/entries/{DRAFT}").status_code == 404


GRANTED = "市场主体登记核验"
#: The moment the grant test reads at, inside the grant's period.
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def _new_events(workspace: Workspace, after: int) -> list[AuditEvent]:
    """Events after id `after` about the loaded entry that served or refused rows."""
    with workspace.sessions() as session:
        new = session.query(AuditEvent).filter(AuditEvent.id > after).order_by(AuditEvent.id).all()
        session.expunge_all()
    return [e for e in new if e.target == ENROL and e.action != "stream.open"]


def _last_id(workspace: Workspace) -> int:
    with workspace.sessions() as session:
        return max(e.id for e in session.query(AuditEvent).all())


def _counted(workspace: Workspace) -> list[UsageDaily]:
    with workspace.sessions() as session:
        return session.query(UsageDaily).all()


def test_an_entry_page_previews_rows_under_no_purpose_and_counts_no_use(
    workspace: Workspace, client: TestClient
) -> None:
    """Opening the page states no purpose, so the audit event names none, and a glance at sample
    rows is not use of the data (REQ-23's figures)."""
    before = _last_id(workspace)
    page = TestClient(client.app)
    assert sign_in(page, "samr", PASSWORD).status_code == 303  # type: ignore[attr-defined]
    html = page.get(f"/entries/{ENROL}").text
    sample = html[html.index('id="sample"') :]
    assert re.findall(r"<td>(\d{6}\*{8}[\dX]{4})</td>", sample)  # rows, masked by the default rule
    assert "预览" in html
    served = _new_events(workspace, before)
    assert [e.action for e in served] == ["preview"]
    event = served[0]
    assert event.outcome == "ok" and event.actor == "samr" and event.detail["channel"] == "web"
    assert event.detail["purpose"] is None and "stated_purpose" not in event.detail
    assert event.detail["rows"] > 0
    assert _counted(workspace) == []


def test_a_preview_through_a_grant_claims_none_of_its_purpose(workspace: Workspace) -> None:
    """With a grant in force the sample reads through it (its fields and masks), but the event names
    the grant only, not its purpose as if the viewer had stated it."""
    with workspace.sessions() as session, session.begin():
        grant = grant_access(
            session,
            organisation="省市场监管局",
            application="samr_app",
            entry_code=ENROL,
            fields=["person_id"],
            purpose=GRANTED,
            legal_basis="条例",
            valid_from=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            valid_until=dt.datetime(2026, 12, 31, tzinfo=dt.UTC),
            actor="t",
            settings=workspace.settings.default,
            now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        )
        grant_id = grant.id
    before = _last_id(workspace)
    with workspace.sessions() as session, SandboxedEngine.for_workspace(workspace) as engine:
        principal = local_principal(session, "samr")
        entry = service.get_entry(session, ENROL)
        visible = visible_entry(session, principal, entry, NOW)
        assert visible is not None and [g.id for g in visible.grants] == [grant_id]
        got = sample(workspace, session, principal, entry, visible, engine, "zh_CN", NOW)
    assert got.refusal is None and got.rows and got.application == "samr_app"
    served = _new_events(workspace, before)
    assert [e.action for e in served] == ["preview"]
    detail = served[0].detail
    assert detail["grant_id"] == grant_id and detail["purpose"] is None
    assert GRANTED not in json.dumps(detail, ensure_ascii=False)
    assert _counted(workspace) == []
