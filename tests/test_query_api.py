"""The sharing gateway over HTTP, on the demo province: what a consumer's token gets, in every format,
what it is refused and why, and the audit event each call leaves (REQ-5, 17, 27, 40, 41)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from python_calamine import CalamineWorkbook

from pubdata import audit
from pubdata.api.app import create_app
from pubdata.clock import Clock
from pubdata.db.models import AuditEvent
from pubdata.demo.build import build_demo
from pubdata.demo.world import PARK_CHECK_PURPOSE
from pubdata.gateway.engine import SandboxedEngine
from pubdata.gateway.identity import find_user
from pubdata.gateway.query import run_query
from pubdata.gateway.roles import Principal, Scope
from pubdata.workspace import Workspace

SOCIAL = "hrss_social_insurance"
APP = "jx_park_workers"
MASKED_ID = re.compile(r"^\d{6}\*{8}\d{3}[\dX]$")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, pinned_clock: Clock) -> Path:
    path = tmp_path_factory.mktemp("gateway") / "home"
    build_demo(path, scale=0.02, clock=pinned_clock)
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
    users = json.loads((home / "demo-accounts.json").read_text("utf-8"))["users"]
    return {u["login"]: u["token"] for u in users}


def post(client: TestClient, token: str | None, **body: Any) -> Response:
    body = {"purpose": PARK_CHECK_PURPOSE, "application": APP, **body}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/api/v1/query", json=body, headers=headers)


def last_event(workspace: Workspace, action: str | None = None) -> AuditEvent:
    with workspace.sessions() as session:
        return audit.list_events(session, action, limit=1)[-1]


@pytest.mark.req("REQ-5", "gateway-audit")
@pytest.mark.req("REQ-17", "grant-terms")
@pytest.mark.req("REQ-27", "on-sharing")
@pytest.mark.req("REQ-40", "api-calls")
def test_consumer_gets_masked_identity_numbers_and_only_jiaxing_rows(
    client: TestClient, tokens: dict[str, str], workspace: Workspace
) -> None:
    answer = post(
        client,
        tokens["jx_zgh"],
        sql=f"SELECT id_number, name, division_code, employer_name FROM {SOCIAL} ORDER BY id_number",
        max_rows=10_000,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    rows = body["rows"]
    assert rows and body["truncated"] is False
    assert all(MASKED_ID.match(r[0]) for r in rows)
    assert all(r[2].startswith("3304") for r in rows)
    assert all(len(r[1]) >= 2 and set(r[1][1:]) == {"*"} for r in rows)
    assert answer.headers["X-Pubdata-Masked"] == f"{SOCIAL}.id_number=mask_id_number; {SOCIAL}.name=mask_name"
    assert answer.headers["X-Pubdata-Filtered"] == f"{SOCIAL}=region:3304"
    assert answer.headers["X-Pubdata-Policy-Versions"] == f"{SOCIAL}=1"
    assert answer.headers["X-Pubdata-Truncated"] == "false"
    assert body["policy"]["filtered"] == {SOCIAL: "region:3304"}
    # Counting outside the region through the policy finds nothing: the filter runs first.
    outside = post(
        client,
        tokens["jx_zgh"],
        sql=f"SELECT count(*) AS n FROM {SOCIAL} WHERE division_code NOT LIKE '3304%'",
    )
    assert outside.json()["rows"] == [[0]]
    # The call is one audit event, with what it read, how many rows left and the hash of the bytes.
    event = last_event(workspace, "query")
    assert event.outcome == "ok" and event.actor == "jx_zgh" and event.target == SOCIAL
    assert event.detail["rows"] == 1 and event.detail["application"] == APP
    assert event.detail["result_hash"] == hashlib.sha256(outside.content).hexdigest()
    assert (
        event.detail["purpose"] == PARK_CHECK_PURPOSE and event.detail["grant_purpose"] == PARK_CHECK_PURPOSE
    )
    assert event.detail["fields"] == {SOCIAL: ["division_code"]}
    assert event.detail["policy_versions"] == {SOCIAL: 1} and event.detail["grant_ids"] == [
        event.detail["grant_id"]
    ]
    assert re.fullmatch(r"[0-9a-f]{64}", event.detail["sql_fingerprint"])
    with workspace.sessions() as session:
        assert audit.verify_chain(session)[0]


@pytest.mark.req("REQ-14", "sharing-classes")
@pytest.mark.req("REQ-40", "grants-refusals")
def test_the_same_token_is_refused_a_not_shared_entry_with_the_reason(
    client: TestClient, tokens: dict[str, str], workspace: Workspace
) -> None:
    answer = post(client, tokens["jx_zgh"], sql="SELECT * FROM wjw_outpatient_visits")
    assert answer.status_code == 403
    assert answer.json()["error"] == "denied"
    assert "wjw_outpatient_visits is not shared (不予共享)" in answer.json()["detail"]
    event = last_event(workspace, "query")
    assert event.outcome == "refused" and event.detail["reason_kind"] == "not_shared"
    assert event.detail["reason"] == answer.json()["detail"]
    with workspace.sessions() as session:
        assert audit.verify_chain(session)[0]


@pytest.mark.req("REQ-17", "refuse-outside")
@pytest.mark.req("REQ-41", "outside-purpose")
def test_a_call_outside_the_grants_purpose_is_refused_and_reported(
    client: TestClient, tokens: dict[str, str], workspace: Workspace
) -> None:
    answer = post(client, tokens["jx_zgh"], sql=f"SELECT name FROM {SOCIAL}", purpose="会员发展营销")
    assert answer.status_code == 403 and "outside purpose" in answer.json()["detail"]
    with workspace.sessions() as session:
        reported = audit.outside_purpose(session)
    assert reported[-1].detail["purpose"] == "会员发展营销"
    # Naming the grant by its purpose code is the same purpose, recorded as the grant's text.
    grant_id = last_event(workspace, "grant").detail["id"]
    assert (
        post(
            client, tokens["jx_zgh"], sql=f"SELECT name FROM {SOCIAL}", purpose=f"grant:{grant_id}"
        ).status_code
        == 200
    )
    event = last_event(workspace, "query")
    assert (
        event.detail["purpose"] == PARK_CHECK_PURPOSE
        and event.detail["stated_purpose"] == f"grant:{grant_id}"
    )


def test_missing_or_bad_tokens_get_the_same_401(client: TestClient, tokens: dict[str, str]) -> None:
    answers = [
        post(client, None, sql="SELECT 1"),
        post(client, "pd_00000000_" + "a" * 43, sql="SELECT 1"),
        post(client, tokens["jx_zgh"][:-1] + "x", sql="SELECT 1"),
        client.post("/api/v1/query", json={"sql": "SELECT 1", "purpose": "p", "application": APP},
                    headers={"Authorization": f"Basic {tokens['jx_zgh']}"}),
    ]  # fmt: skip
    assert {a.status_code for a in answers} == {401}
    assert len({a.json()["detail"] for a in answers}) == 1
    assert answers[0].headers["WWW-Authenticate"] == "Bearer"


def test_scope_role_and_organisation_are_checked(client: TestClient, tokens: dict[str, str]) -> None:
    sql = f"SELECT name FROM {SOCIAL}"
    # The citizen's token may query but not export; and a person without an organisation reads nothing.
    export = post(client, tokens["citizen"], sql=sql, format="csv")
    assert export.status_code == 403 and export.json()["error"] == "forbidden"
    assert "not valid for export" in export.json()["detail"]
    denied = post(client, tokens["citizen"], sql=sql)
    assert denied.status_code == 403 and "no organisation" in denied.json()["detail"]
    # The auditor's token carries no query scope at all.
    assert post(client, tokens["zj_auditor"], sql=sql).status_code == 403
    # Another organisation's application is not the caller's.
    other = post(client, tokens["jx_zgh"], sql=sql, application="gat_population_service")
    assert other.status_code == 403 and "not registered to 嘉兴市总工会" in other.json()["detail"]


def test_policy_violations_are_400_and_the_server_stays_healthy(
    client: TestClient, tokens: dict[str, str]
) -> None:
    for sql in (
        "SELECT * FROM read_csv('/etc/passwd')",
        f"SELECT 1; SELECT * FROM {SOCIAL}",
        f"DROP TABLE {SOCIAL}",
        'SELECT * FROM "__base_hrss_social_insurance"',
        "SELECT * FROM information_schema.tables",
    ):
        answer = post(client, tokens["jx_zgh"], sql=sql)
        assert answer.status_code == 400, (sql, answer.text)
        assert answer.json()["error"] == "policy"
    # Its own entry it reads whole; a column the grant does not include does not exist for it.
    assert post(client, tokens["jx_zgh"], sql="SELECT mobile FROM jxzgh_park_members").status_code == 200
    hidden = post(client, tokens["jx_zgh"], sql=f"SELECT secret_column FROM {SOCIAL}")
    assert hidden.status_code == 400
    assert post(client, tokens["jx_zgh"], sql="SELECT 1 AS one").json()["rows"] == [[1]]
    too_many = post(client, tokens["jx_zgh"], sql="SELECT 1", max_rows=20_000)
    assert too_many.status_code == 400 and "at most 10000" in too_many.json()["detail"]


def test_json_pages_join_up_to_the_whole_answer(client: TestClient, tokens: dict[str, str]) -> None:
    sql = f"SELECT id_number, insurance_type FROM {SOCIAL} ORDER BY id_number, insurance_type"
    whole = post(client, tokens["jx_zgh"], sql=sql, max_rows=10_000).json()["rows"]
    pages, offset = [], 0
    while offset is not None:
        page = post(client, tokens["jx_zgh"], sql=sql, max_rows=40, offset=offset)
        body = page.json()
        assert page.headers["X-Pubdata-Truncated"] == str(body["truncated"]).lower()
        assert body["offset"] == offset
        pages += body["rows"]
        offset = body["next_offset"]
    assert pages == whole and len(whole) > 40


@pytest.mark.req("REQ-27", "on-sharing")
def test_every_format_parses_back_masked(
    client: TestClient, tokens: dict[str, str], workspace: Workspace
) -> None:
    sql = (
        f"SELECT id_number, name, division_code, enrolled_on FROM {SOCIAL} ORDER BY id_number, insurance_type"
    )
    expected = post(client, tokens["jx_zgh"], sql=sql, max_rows=10_000).json()["rows"]
    ids = [r[0] for r in expected]

    answer = post(client, tokens["jx_zgh"], sql=sql, format="csv", bom=True)
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith(b"\xef\xbb\xbf")
    assert 'filename="query.csv"' in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    # The demo holds a flagged objection on this entry, so row-level answers carry `_disputed`.
    assert rows[0] == ["id_number", "name", "division_code", "enrolled_on", "_disputed"]
    assert [r[0] for r in rows[1:]] == ids and rows[1][1] == expected[0][1]  # Chinese intact

    lines = post(client, tokens["jx_zgh"], sql=sql, format="jsonl").content.decode().split("\n")[:-1]
    assert [json.loads(line)["id_number"] for line in lines] == ids

    table = pa.ipc.open_stream(post(client, tokens["jx_zgh"], sql=sql, format="arrow").content).read_all()
    assert table.column("id_number").to_pylist() == ids

    parquet = pq.read_table(io.BytesIO(post(client, tokens["jx_zgh"], sql=sql, format="parquet").content))
    assert parquet.column("division_code").to_pylist() == [r[2] for r in expected]

    xlsx = post(client, tokens["jx_zgh"], sql=sql, format="xlsx")
    assert xlsx.headers["X-Pubdata-Rows"] == str(len(expected))
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(xlsx.content)).get_sheet_by_index(0).to_python()
    assert [r[0] for r in sheet[1:]] == ids and all(MASKED_ID.match(i) for i in ids)

    with workspace.sessions() as session:
        exports = audit.list_events(session, "export", limit=5)
    assert [e.action for e in exports] == [
        f"export.{f}" for f in ("csv", "jsonl", "arrow", "parquet", "xlsx")
    ]
    assert {e.detail["rows"] for e in exports} == {len(expected)}
    assert exports[-1].detail["result_hash"] == hashlib.sha256(xlsx.content).hexdigest()


def test_rows_route_filters_by_field_values_without_sql(
    client: TestClient, tokens: dict[str, str], workspace: Workspace
) -> None:
    everything = post(client, tokens["jx_zgh"], sql=f"SELECT * FROM {SOCIAL}", max_rows=10_000).json()["rows"]
    status = everything[0][6]
    params = {"purpose": PARK_CHECK_PURPOSE, "application": APP, "status": status, "limit": 10_000}
    answer = client.get(f"/api/v1/entries/{SOCIAL}/rows", params=params,
                        headers={"Authorization": f"Bearer {tokens['jx_zgh']}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    rows = answer.json()["rows"]
    assert rows and len(rows) == sum(1 for r in everything if r[6] == status)
    assert last_event(workspace, "rows").detail["rows"] == len(rows)
    # A value is a value: quotes and SQL in it find nothing and break nothing.
    params["status"] = "x' OR '1'='1"
    hostile = client.get(f"/api/v1/entries/{SOCIAL}/rows", params=params,
                         headers={"Authorization": f"Bearer {tokens['jx_zgh']}"})  # fmt: skip
    assert hostile.status_code == 200 and hostile.json()["rows"] == []


@pytest.mark.req("REQ-41", "subject-access")
def test_subjects_are_indexed_whether_served_as_stored_or_masked(
    client: TestClient, tokens: dict[str, str], workspace: Workspace
) -> None:
    sql = "SELECT id_number AS sfz, name FROM gat_population ORDER BY 1 LIMIT 3"
    own = post(
        client, tokens["zj_gat"], sql=sql, application="gat_population_service", purpose="人口信息核验"
    )
    assert own.status_code == 200, own.text
    first_id = own.json()["rows"][0][0]
    assert not MASKED_ID.match(first_id)
    served = last_event(workspace, "query")
    assert served.detail["subjects_indexed"] == 3
    # The consumer sees masked numbers only, yet it saw those people's records: they are indexed.
    post(client, tokens["jx_zgh"], sql=f"SELECT id_number FROM {SOCIAL}")
    assert last_event(workspace, "query").detail["subjects_indexed"] > 0
    with workspace.sessions() as session:
        found = audit.who_accessed(session, workspace.home, id_number=first_id)
    assert [e.id for e in found] == [served.id]


def test_a_stream_that_fails_midway_ends_with_the_error_trailer(workspace: Workspace) -> None:
    with workspace.sessions() as session:
        user = find_user(session, "zj_gat")
        principal = Principal(user, user.organisation, user.roles, frozenset(Scope))
    stopped = "the query exceeded its time budget of 1 s and was stopped"
    huge = "SELECT a.name, b.name AS b, c.gender FROM gat_population a, gat_population b, gat_population c"
    with SandboxedEngine.for_workspace(workspace, time_budget_s=1.0) as engine:
        for fmt, check in (
            ("csv", lambda last: last == f"# error: {stopped}"),
            ("jsonl", lambda last: json.loads(last) == {"error": stopped}),
        ):  # fmt: skip
            answer = run_query(workspace, principal, huge, "人口信息核验", "gat_population_service", fmt,
                               engine=engine, batch_rows=100)  # fmt: skip
            chunks = iter(answer.body)
            first = next(chunks)
            time.sleep(1.3)
            text = (first + b"".join(chunks)).decode("utf-8")
            assert check(text.split("\n")[-2]), text[-200:]
            assert answer.served.outcome == "failed"
            event = last_event(workspace, f"export.{fmt}")
            assert event.outcome == "failed" and event.detail["rows"] == answer.served.rows
            assert event.detail["result_hash"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
