"""Hostile input over HTTP, against the demo province through the whole gateway (token, decision,
rewrite, engine, export), with the consumer's token of the 嘉兴 trade union.

Every attack is answered with a clear 4xx naming what was wrong — audited as a refusal with the same
sentence — or with a 200 that leaks nothing: no raw identity number and no row outside the grant's
region appear in the body. After each one the service is healthy: ``/healthz`` answers and a normal
query still returns the region's row count. The rewrite and the engine are attacked directly in
``test_rewrite_attacks.py`` and ``test_engine_attacks.py``; here the point is the path a client
actually reaches, with the statuses and bodies it actually gets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway_support import JIAXING, OUTPATIENT, PARK_APP, PARK_PURPOSE, SOCIAL, bearer, demo_users, raw_rows
from pubdata import audit
from pubdata.api.app import create_app
from pubdata.clock import Clock
from pubdata.db.models import CatalogEntry
from pubdata.demo.build import build_demo
from pubdata.gateway.engine import SandboxedEngine
from pubdata.store.delta import DatasetStore
from pubdata.workspace import Workspace

#: Short enough for a fast suite; the runaway queries below need far longer than this.
BUDGET_S = 3.0
ZWSP = "\u200b"


@dataclass(frozen=True)
class Oracle:
    """What the consumer may see and what it must never see."""

    region_rows: int
    raw_ids: frozenset[str]
    in_region_id: str
    outside_codes: frozenset[str]
    outpatient_file: str
    data_dir: str


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, pinned_clock: Clock) -> Workspace:
    home = tmp_path_factory.mktemp("attacks") / "home"
    build_demo(home, scale=0.02, clock=pinned_clock)
    return Workspace.open(home, clock=pinned_clock)


@pytest.fixture(scope="module")
def oracle(workspace: Workspace) -> Oracle:
    raw = raw_rows(workspace, SOCIAL)
    codes = pc.cast(raw["division_code"], pa.string())
    inside = pc.starts_with(codes, JIAXING)
    with workspace.sessions() as session:
        entry = session.query(CatalogEntry).filter_by(code=OUTPATIENT).one()
        files = DatasetStore(workspace.data_dir, workspace.sessions).file_uris(entry)
    return Oracle(
        region_rows=pc.sum(inside).as_py(),
        raw_ids=frozenset(raw["id_number"].to_pylist()),
        in_region_id=raw.filter(inside)["id_number"][0].as_py(),
        outside_codes=frozenset(raw.filter(pc.invert(inside))["division_code"].to_pylist()),
        outpatient_file=files[0].removeprefix("file://"),
        data_dir=str(workspace.data_dir),
    )


@pytest.fixture(scope="module")
def client(workspace: Workspace) -> Iterator[TestClient]:
    """The app with an engine of a short time budget; server errors come back as 500s, not raised."""
    app = create_app(workspace)
    with SandboxedEngine.for_workspace(workspace, time_budget_s=BUDGET_S) as engine:
        app.state.query_engine = engine
        yield TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def token(workspace: Workspace) -> str:
    token: str = demo_users(workspace.home)["jx_zgh"]["token"]
    return token


def ask(client: TestClient, token: str, sql: str, **more: Any) -> httpx.Response:
    body = {"sql": sql, "purpose": PARK_PURPOSE, "application": PARK_APP, **more}
    answer: httpx.Response = client.post("/api/v1/query", json=body, headers=bearer(token))
    return answer


def assert_healthy(client: TestClient, token: str, oracle: Oracle) -> None:
    assert client.get("/healthz").status_code == 200
    normal = ask(client, token, f"SELECT count(*) FROM {SOCIAL}")
    assert normal.status_code == 200, normal.text
    assert normal.json()["rows"] == [[oracle.region_rows]]


def assert_no_leak(text: str, oracle: Oracle) -> None:
    ids = set(re.findall(r"(?<![\dX])\d{17}[\dX](?![\dX])", text))
    assert not ids & oracle.raw_ids, "a raw identity number left the gateway"
    codes = set(re.findall(r"(?<!\d)\d{12}(?!\d)", text))
    assert not codes & oracle.outside_codes, "a row outside the grant's region left the gateway"


# --- refused: (sql, status, error code, a fragment of the sentence the client reads) -------------

Refusal = tuple[str, int, str, str]


def refusals(o: Oracle) -> dict[str, list[Refusal]]:
    return {
        "file and network reads": [
            ("SELECT * FROM read_csv('/etc/passwd')", 400, "policy", "table functions are not allowed"),
            ("SELECT read_text('/etc/passwd')", 400, "policy", "function not allowed: read_text"),
            (f"SELECT * FROM read_parquet('{o.outpatient_file}')", 400, "policy", "not allowed"),
            (f"SELECT * FROM '{o.outpatient_file}'", 403, "denied", "no catalogue entry"),
            (f"SELECT * FROM glob('{o.data_dir}/*')", 400, "policy", "table functions are not allowed"),
            ("SELECT * FROM read_json('http://127.0.0.1:9/x.json')", 400, "policy", "not allowed"),
            ("SELECT * FROM 'https://example.com/x.csv'", 403, "denied", "no catalogue entry"),
            (f"SELECT (SELECT count(*) FROM read_blob('{o.data_dir}/'))", 400, "policy", "not allowed"),
        ],
        "extension loading": [
            ("INSTALL httpfs", 400, "policy", "only queries are allowed"),
            ("LOAD httpfs", 400, "policy", "only queries are allowed"),
            ("LOAD '/tmp/evil.duckdb_extension'", 400, "policy", "only queries are allowed"),
            ("SELECT * FROM duckdb_extensions()", 400, "policy", "not allowed"),
        ],
        "settings and pragmas": [
            ("SET memory_limit = '64GB'", 400, "policy", "only queries are allowed, not SET"),
            ("RESET threads", 400, "policy", "only queries are allowed"),
            ("PRAGMA database_list", 400, "policy", "only queries are allowed"),
            ("SET VARIABLE __pk_g1 = 'chosen'", 400, "policy", "only queries are allowed"),
            ("SELECT current_setting('allowed_directories')", 400, "policy", "function not allowed"),
            ("SELECT getvariable('__pk_g1')", 400, "policy", "function not allowed: getvariable"),
            ("SELECT * FROM duckdb_settings()", 400, "policy", "not allowed"),
            ("CALL pragma_version()", 400, "policy", "only queries are allowed"),
        ],
        "catalogue introspection": [
            ("SELECT * FROM information_schema.tables", 400, "policy", "catalogue introspection"),
            ("SELECT sql FROM duckdb_views", 400, "policy", "catalogue introspection"),
            ("SELECT * FROM duckdb_tables()", 400, "policy", "not allowed"),
            ("SELECT * FROM sqlite_master", 400, "policy", "catalogue introspection"),
            (f"SELECT * FROM pragma_table_info('{SOCIAL}')", 400, "policy", "not allowed"),
            ("SHOW TABLES", 400, "policy", "only queries are allowed"),
            (f"DESCRIBE {SOCIAL}", 400, "policy", "only queries are allowed"),
            (f"SUMMARIZE {SOCIAL}", 400, "policy", "only queries are allowed"),
        ],
        "several statements": [
            (f"SELECT 1; SELECT * FROM {OUTPATIENT}", 400, "policy", "exactly one statement"),
            (f"SELECT count(*) FROM {SOCIAL};; DROP TABLE {SOCIAL}", 400, "policy", "exactly one"),
            ("", 400, "policy", "exactly one statement is allowed, found 0"),
        ],
        "DDL and DML": [
            (f"DROP TABLE {SOCIAL}", 400, "policy", "only queries are allowed, not DROP"),
            (f"CREATE TABLE leak AS SELECT * FROM {SOCIAL}", 400, "policy", "not CREATE"),
            (f"INSERT INTO {SOCIAL} (name) VALUES ('x')", 400, "policy", "not INSERT"),
            (f"UPDATE {SOCIAL} SET name = 'x'", 400, "policy", "not UPDATE"),
            (f"DELETE FROM {SOCIAL}", 400, "policy", "not DELETE"),
            (f"COPY {SOCIAL} TO '/tmp/leak.csv'", 400, "policy", "not COPY"),
            ("ATTACH ':memory:' AS scratch", 400, "policy", "not ATTACH"),
            ("CREATE MACRO m(a) AS a", 400, "policy", "not CREATE"),
            ("EXPORT DATABASE '/tmp/dump'", 400, "policy", "could not be parsed"),
        ],
        "EXPLAIN": [
            (f"EXPLAIN SELECT * FROM {SOCIAL}", 400, "policy", "not EXPLAIN"),
            (f"EXPLAIN ANALYZE SELECT * FROM {SOCIAL}", 400, "policy", "not EXPLAIN"),
        ],
        "CTE shadowing": [
            (
                f"WITH {SOCIAL} AS (SELECT * FROM {OUTPATIENT}) SELECT * FROM {SOCIAL}",
                403,
                "denied",
                "is not shared",
            ),
            (f"WITH __base_{SOCIAL} AS (SELECT 1) SELECT * FROM {SOCIAL}", 400, "policy", "reserved"),
        ],
        "table-name variants of an entry the caller may not read": [
            (f'SELECT * FROM "{OUTPATIENT.upper()}"', 403, "denied", "is not shared"),
            (f"SELECT * FROM main.{OUTPATIENT}", 403, "denied", "is not shared"),
            ('SELECT * FROM memory.main."Wjw_Outpatient_Visits"', 403, "denied", "is not shared"),
            (f"SELECT * FROM/**/{OUTPATIENT}/*x*/", 403, "denied", "is not shared"),
            ("SELECT * FROM wjw_outpatient/**/_visits", 403, "denied", "no catalogue entry"),
            (f'SELECT * FROM "wjw_outpatient{ZWSP}_visits"', 403, "denied", "no catalogue entry"),
            (f"SELECT * FROM wjw_outpatient{ZWSP}_visits", 403, "denied", "no catalogue entry"),
            ("SELECT * FROM ｗｊｗ_outpatient_visits", 403, "denied", "no catalogue entry"),
            ("SELECT * FROM gat_population", 403, "denied", "is restricted"),
            ('SELECT * FROM "GAT_Population"', 403, "denied", "is restricted"),
            (f'SELECT * FROM "__base_{SOCIAL}"', 400, "policy", "reserved"),
            (f'SELECT * FROM "__BASE_{SOCIAL.upper()}"', 400, "policy", "reserved"),
            (f"SELECT secret FROM {SOCIAL}", 400, "query_failed", "secret"),
        ],
        "resource exhaustion": [
            ("SELECT * FROM range(1000000000000)", 400, "policy", "table functions are not allowed"),
            ("SELECT count(*) FROM generate_series(1, 1000000000000)", 400, "policy", "not allowed"),
            (
                "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r",
                400,
                "policy",
                "recursive CTEs are not allowed",
            ),
            (
                f"SELECT count(*) FROM {SOCIAL} a, {SOCIAL} b, {SOCIAL} c, {SOCIAL} d, {SOCIAL} e",
                504,
                "timeout",
                f"time budget of {BUDGET_S:g} s",
            ),
            ("SELECT repeat('x', 10000000000)", 400, "policy", "more than the 64 MB a query may build"),
            ("SELECT count(*) FROM unnest(repeat([1], 300000000))", 400, "policy", "(repeat)"),
            ("SELECT length(repeat('x', 2000000000))", 400, "policy", "about 2000 MB (repeat)"),
            (
                f"SELECT count(*) FROM {SOCIAL} a, {SOCIAL} b WHERE length(lpad(a.name, 100000)) > 0",
                400,
                "policy",
                "lpad",
            ),
            (
                "SELECT count(*) FROM " + ", ".join(f"{SOCIAL} t{i}" for i in range(1300)),
                400,
                "policy",
                "1299 joins",
            ),
            ("SELECT " + "(" * 3000 + "1" + ")" * 3000, 400, "policy", "nested too deeply"),
            ("SELECT 1" + " + 1" * 20_000, 400, "policy", "nested too deeply"),
            (
                f"SELECT count(*) FROM {SOCIAL} WHERE " + " OR ".join(["(((((((name = 'x')))))))"] * 400),
                400,
                "policy",
                "nested too deeply",
            ),
        ],
    }


REFUSED_FAMILIES = (
    "file and network reads",
    "extension loading",
    "settings and pragmas",
    "catalogue introspection",
    "several statements",
    "DDL and DML",
    "EXPLAIN",
    "CTE shadowing",
    "table-name variants of an entry the caller may not read",
    "resource exhaustion",
)


def last_query_event(workspace: Workspace) -> Any:
    with workspace.sessions() as session:
        return audit.list_events(session, "query", limit=1)[-1]


@pytest.mark.req("REQ-5", "gateway-audit")
@pytest.mark.req("REQ-17", "refuse-outside", "audit-refusal")
@pytest.mark.req("REQ-40", "grants-refusals")
@pytest.mark.parametrize("family", REFUSED_FAMILIES)
def test_each_attack_is_a_clear_audited_4xx_and_the_service_stays_healthy(
    family: str, client: TestClient, token: str, oracle: Oracle, workspace: Workspace
) -> None:
    for sql, status, error, fragment in refusals(oracle)[family]:
        answer = ask(client, token, sql)
        assert (answer.status_code, answer.json()["error"]) == (status, error), (sql[:120], answer.text)
        detail = answer.json()["detail"]
        assert fragment in detail and len(detail) < 500, (sql[:120], detail)
        assert_no_leak(answer.text, oracle)
        event = last_query_event(workspace)
        assert event.outcome == "refused" and event.detail["reason"] == detail, sql[:120]
        assert_healthy(client, token, oracle)


# --- answered, without leaking: (sql, what the rows must be) -----------------------------------

Check = Callable[[list[list[Any]], Oracle], bool]


def _count_is_region(rows: list[list[Any]], o: Oracle) -> bool:
    return rows == [[o.region_rows]]


def _nothing(rows: list[list[Any]], _o: Oracle) -> bool:
    return rows in ([], [[0]])


def answered(o: Oracle) -> list[tuple[str, Check]]:
    raw = o.in_region_id
    masked = raw[:6] + "*" * 8 + raw[14:]
    return [
        # quoted, case and comment variants of the granted entry still get its policy
        (f'SELECT count(*) FROM "{SOCIAL.upper()}"', _count_is_region),
        ('SELECT count(*) FROM "HRSS_Social_Insurance"', _count_is_region),
        ('SELECT count(*) FROM main."Hrss_Social_Insurance"', _count_is_region),
        (f"SELECT count(*) FROM memory.main.{SOCIAL}", _count_is_region),
        (f"SELECT count(*) FROM/**/{SOCIAL}/*x*/ -- tail", _count_is_region),
        (f"SELECT count(*) FROM (SELECT * FROM {SOCIAL}) AS \"{OUTPATIENT}\"", _count_is_region),
        # CTE shadowing cannot take the policy off, nor reach another entry
        (f"WITH {SOCIAL} AS (SELECT * FROM {SOCIAL} WHERE true OR 1 = 1) SELECT count(*) FROM {SOCIAL}",
         _count_is_region),
        (f"WITH {OUTPATIENT} AS (SELECT 1 AS n) SELECT * FROM {OUTPATIENT}", lambda r, _o: r == [[1]]),
        # mask oracles: predicates, ordering, aggregates, hashes, JSON and structs see masked values
        (f"SELECT name FROM {SOCIAL} WHERE id_number = '{raw}'", _nothing),
        (f"SELECT count(*) FROM {SOCIAL} WHERE id_number LIKE '{raw[:10]}%'", _nothing),
        (f"SELECT count(*) > 0 FROM {SOCIAL} WHERE id_number = '{masked}'", lambda r, _o: r == [[True]]),
        (f"SELECT min(id_number), max(id_number) FROM {SOCIAL}",
         lambda r, _o: all("*" * 8 in v for v in r[0])),
        (f"SELECT id_number FROM {SOCIAL} ORDER BY id_number LIMIT 5",
         lambda r, _o: all("*" * 8 in v[0] for v in r)),
        (f"SELECT count(*) FROM {SOCIAL} WHERE substring(id_number, 7, 8) = '{raw[6:14]}'", _nothing),
        (f"SELECT count(*) FROM {SOCIAL} WHERE md5(id_number) = md5('{raw}')", _nothing),
        (f"SELECT to_json(t) FROM {SOCIAL} t LIMIT 20", lambda r, _o: len(r) == 20),
        (f"SELECT t FROM {SOCIAL} t LIMIT 20", lambda r, _o: len(r) == 20),
        (f"SELECT struct_pack(a := t.id_number, b := t.name) FROM {SOCIAL} t LIMIT 20",
         lambda r, _o: len(r) == 20),
        (f"SELECT list(id_number ORDER BY id_number) FROM {SOCIAL}", lambda r, _o: len(r) == 1),
        (f"SELECT p.name FROM {SOCIAL} p JOIN (SELECT '{raw}' AS v) x ON p.id_number = x.v", _nothing),
        # row-filter escapes: OR true, negation, sampling, DISTINCT on the filter column
        (f"SELECT count(*) FROM {SOCIAL} WHERE division_code LIKE '3301%' OR true", _count_is_region),
        (f"SELECT count(*) FROM {SOCIAL} WHERE division_code NOT LIKE '{JIAXING}%'", _nothing),
        (f"SELECT count(*) FROM {SOCIAL} TABLESAMPLE 100 PERCENT", _count_is_region),
        (f"SELECT count(*) FROM {SOCIAL} USING SAMPLE 100 PERCENT (bernoulli)", _count_is_region),
        (f"SELECT DISTINCT left(division_code, 4) FROM {SOCIAL}", lambda r, _o: r == [[JIAXING]]),
        (f"SELECT count(*) FROM {SOCIAL} a JOIN {SOCIAL} b USING (id_number, insurance_type)",
         _count_is_region),
        # bounded: a cross join that streams is cut at the page; giant values stay inside the engine
        (f"SELECT a.name FROM {SOCIAL} a, {SOCIAL} b, {SOCIAL} c", lambda r, _o: len(r) == 1000),
        ("SELECT length(repeat('x', 10000000))", lambda r, _o: r == [[10_000_000]]),
        (f"SELECT {' + '.join(['1'] * 200)}", lambda r, _o: r == [[200]]),
    ]  # fmt: skip


@pytest.mark.req("REQ-17", "grant-terms")
@pytest.mark.req("REQ-27", "on-sharing")
def test_oracles_and_escapes_are_answered_from_the_policy_view_only(
    client: TestClient, token: str, oracle: Oracle
) -> None:
    for sql, check in answered(oracle):
        answer = ask(client, token, sql)
        assert answer.status_code == 200, (sql, answer.text)
        assert check(answer.json()["rows"], oracle), (sql, answer.text[:300])
        assert_no_leak(answer.text, oracle)
    assert_healthy(client, token, oracle)


def test_a_10_mb_sql_body_is_a_short_422(client: TestClient, token: str, oracle: Oracle) -> None:
    huge = "SELECT 1 " + " " * 10_000_000
    answer = client.post(
        "/api/v1/query",
        content=json.dumps({"sql": huge, "purpose": PARK_PURPOSE, "application": PARK_APP}),
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert answer.status_code == 422
    assert len(answer.content) < 1_000, "the rejected body was echoed back"
    assert answer.json()["detail"][0]["loc"] == ["body", "sql"]
    # A malformed body of the same size, and one missing every field, are short 4xx too.
    for content in (b"{" * 10_000_000, json.dumps({"sql": huge}).encode()):
        malformed = client.post(
            "/api/v1/query", content=content, headers={**bearer(token), "Content-Type": "application/json"}
        )
        assert malformed.status_code in (400, 422) and len(malformed.content) < 1_000
    assert_healthy(client, token, oracle)


def test_the_rows_route_takes_names_and_values_as_data(
    client: TestClient, token: str, oracle: Oracle
) -> None:
    params = {"purpose": PARK_PURPOSE, "application": PARK_APP}
    cases = [
        (f'{SOCIAL}" UNION SELECT * FROM "{OUTPATIENT}', {}, 422),  # longer than any code
        (f'x" UNION SELECT * FROM "{OUTPATIENT}', {}, 403),
        (f"{OUTPATIENT}", {}, 403),
        (f"wjw_outpatient{ZWSP}_visits", {}, 403),
        (SOCIAL, {'name" OR 1=1 --': "x"}, 400),
        (SOCIAL, {"division_code": f"x' OR division_code NOT LIKE '{JIAXING}%' --"}, 200),
        (SOCIAL, {"id_number": oracle.in_region_id}, 200),
        (SOCIAL, {"status": "x" * 5_000}, 200),
    ]
    for code, filters, status in cases:
        answer = client.get(
            f"/api/v1/entries/{code}/rows", params={**params, **filters}, headers=bearer(token)
        )
        assert answer.status_code == status, (code, filters, answer.text)
        if status == 200:
            assert answer.json()["rows"] == []
        assert_no_leak(answer.text, oracle)
    assert_healthy(client, token, oracle)


INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]


@st.composite
def name_variants(draw: st.DrawFn, code: str) -> str:
    """`code` with its case shuffled, maybe an invisible or full-width character, quoting, a schema
    qualifier and comments around it — the ways a name can be made to look like another."""
    chars = [c.upper() if draw(st.booleans()) else c for c in code]
    if draw(st.booleans()):
        at = draw(st.integers(0, len(chars)))
        chars.insert(at, draw(st.sampled_from(INVISIBLE)))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(chars) - 1))
        if chars[at].isascii() and chars[at].isalpha():
            chars[at] = chr(ord(chars[at].lower()) - ord("a") + ord("ａ"))
    name = "".join(chars)
    quoted = draw(st.booleans()) or not name.isascii()
    name = f'"{name}"' if quoted else name
    qualifier = draw(st.sampled_from(["", "main.", "memory.main.", "MAIN."]))
    before, after = draw(st.sampled_from([("", ""), ("/*a*/", "/*b*/"), (" ", " -- c\n")]))
    return f"{before}{qualifier}{name}{after}"


@pytest.mark.req("REQ-14", "sharing-classes")
@pytest.mark.req("REQ-17", "grant-terms")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), target=st.sampled_from([SOCIAL, OUTPATIENT]))
def test_no_spelling_of_a_name_reaches_rows_the_policy_does_not_show(
    data: st.DataObject, target: str, client: TestClient, token: str, oracle: Oracle
) -> None:
    name = data.draw(name_variants(target))
    answer = ask(client, token, f"SELECT count(*) FROM {name}")
    assert answer.status_code in (200, 400, 403), answer.text
    assert_no_leak(answer.text, oracle)
    if target == OUTPATIENT:
        assert answer.status_code != 200, name
        return
    if name.isascii():  # case, quotes, qualifiers and comments do not change which entry it is
        assert answer.status_code == 200, (name, answer.text)
    if answer.status_code == 200:
        assert answer.json()["rows"] == [[oracle.region_rows]], name
