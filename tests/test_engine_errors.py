"""A failed query says what kind of failure it was and where the sender wrote it — never the policy.

DuckDB explains an error with a window of the SQL it ran, which is the enforced query: the grant's
row predicate with its literals, the region filter, the masks and the ``__base_*`` names. Here the
嘉兴 trade union's consumer queries through a grant whose row predicate lists three identity numbers
(``id_number NOT IN (…)``) beside its region filter, and provokes every kind of engine error over
HTTP and on the portal's console: each answer and each audit event must name the kind and the
sender's own names, and hold no literal of the predicate, no region prefix, no ``__base`` name and
no fragment of the enforced SQL.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pyarrow.compute as pc
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway_support import JIAXING, PARK_APP, SOCIAL, bearer, demo_users, raw_rows
from pubdata import audit
from pubdata.api.app import create_app
from pubdata.clock import Clock
from pubdata.demo.build import build_demo
from pubdata.gateway.engine import SandboxedEngine
from pubdata.gateway.engine_failures import FailureKind, QueryFailed, explain, kind_of
from pubdata.gateway.grants import grant_access
from pubdata.workspace import Workspace
from web_support import csrf_of, sign_in

#: The purpose of the grant with the secret row predicate.
PURPOSE = "职工参保异常核查"
GRANT_FROM = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
FIELDS = ["id_number", "name", "insurance_type", "employer_name", "enrolled_on", "status", "division_code"]


@dataclass(frozen=True)
class Secret:
    """What the grant holds that its consumer must never read back."""

    ids: tuple[str, ...]
    predicate: str


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, pinned_clock: Clock) -> Path:
    path = tmp_path_factory.mktemp("engine-errors") / "home"
    build_demo(path, scale=0.02, clock=pinned_clock)
    return path


@pytest.fixture(scope="module")
def workspace(home: Path, pinned_clock: Clock) -> Workspace:
    return Workspace.open(home, clock=pinned_clock)


@pytest.fixture(scope="module")
def secret(workspace: Workspace) -> Secret:
    """A second grant to the trade union: its region, and three of its people left out by number."""
    raw = raw_rows(workspace, SOCIAL)
    inside = raw.filter(pc.starts_with(pc.cast(raw["division_code"], "string"), JIAXING))
    ids = tuple(inside["id_number"].to_pylist()[:3])
    predicate = "id_number NOT IN (" + ", ".join(f"'{i}'" for i in ids) + ")"
    with workspace.sessions() as session, session.begin():
        grant_access(
            session,
            organisation="嘉兴市总工会",
            application=PARK_APP,
            entry_code=SOCIAL,
            fields=FIELDS,
            region_prefix=JIAXING,
            region_field="division_code",
            row_predicate=predicate,
            deid={"id_number": "mask_id_number", "name": "mask_name"},
            purpose=PURPOSE,
            legal_basis="《浙江省公共数据条例》第二十一条",
            valid_from=GRANT_FROM,
            valid_until=dt.datetime(2120, 1, 1, tzinfo=dt.UTC),
            actor="test",
            settings=replace(workspace.settings.default, max_grant_days=100_000),
            now=GRANT_FROM,
        )
    return Secret(ids, predicate)


@pytest.fixture(scope="module")
def client(workspace: Workspace, secret: Secret) -> Iterator[TestClient]:
    app = create_app(workspace)
    with SandboxedEngine.for_workspace(workspace, time_budget_s=10.0) as engine:
        app.state.query_engine = engine
        yield TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def token(home: Path) -> str:
    token: str = demo_users(home)["jx_zgh"]["token"]
    return token


def ask(client: TestClient, token: str, sql: str, **more: Any) -> httpx.Response:
    body = {"sql": sql, "purpose": PURPOSE, "application": PARK_APP, **more}
    answer: httpx.Response = client.post("/api/v1/query", json=body, headers=bearer(token))
    return answer


def last_query_event(workspace: Workspace) -> Any:
    with workspace.sessions() as session:
        return audit.list_events(session, "query", limit=1)[-1]


#: Words of the enforced SQL and of DuckDB's explanations that no answer may hold.
ENFORCED_WORDS = (
    "__base",
    "__pk",
    "NOT IN",
    "LINE ",
    "^^^",
    "getvariable",
    "read_parquet",
    "Candidate",
    "Did you",
)


def assert_says_nothing_of_the_policy(said: str, secret: Secret, sql: str = "") -> None:
    for number in secret.ids:
        assert number not in said, "a literal of the grant's row predicate left the gateway"
        assert number[:12] not in said
    numbers = re.findall(r"\d{17}[\dX]", said)
    assert all(n in sql for n in numbers), "an identity number the sender did not write left the gateway"
    assert f"'{JIAXING}" not in said and f"{JIAXING}%" not in said, "the region filter left the gateway"
    for word in ENFORCED_WORDS:
        assert word not in said, word
    for word in ("__base", "__pk", "getvariable", "read_parquet", " not in ("):
        assert word not in said.lower(), word
    if "division_code" not in sql:
        assert "division_code" not in said, "a column of the policy the sender did not name"


# --- every kind of engine error, through the grant with the secret predicate ------------------

#: (SQL, kind, the name and place the sentence cites or None)
K, T = FailureKind, SOCIAL
ERRORS: list[tuple[str, FailureKind, str | None]] = [
    (f"SELECT count(*)\nFROM {T}\nWHERE status = 1", K.CONVERSION, "near status (line 3, column 7)"),
    (f"SELECT CAST(status AS DATE) FROM {T}", K.CONVERSION, None),
    (f"SELECT CAST(length(name) * 1000 AS TINYINT) FROM {T}", K.CONVERSION, None),
    (f"SELECT list_extract([1, 2], 'x') FROM {T}", K.CONVERSION, None),
    (f"SELECT list_extract([1, 2], status) FROM {T}", K.BINDER, None),
    (f"SELECT make_date(2020, length(name) + 12, 1) FROM {T}", K.CONVERSION, None),
    (f"SELECT secret FROM {T}", K.BINDER, "near secret (line 1, column 8)"),
    (f"SELECT name, count(*) FROM {T}", K.BINDER, "near name (line 1, column 8)"),
    (f"SELECT t.name.x FROM {T} t", K.BINDER, "near name"),
    (
        f"SELECT a.name FROM {T} a JOIN {T} b ON a.status = b.status WHERE status = 'x'",
        K.BINDER,
        "near status",
    ),
    (f"SELECT name::no_such_type FROM {T}", K.CATALOG, "near no_such_type (line 1, column 14)"),
    (f"SELECT length(name)::BIGINT << 70 FROM {T}", K.OUT_OF_RANGE, None),
    (f"SELECT enrolled_on + INTERVAL (length(name) * 100000000) YEAR FROM {T}", K.OUT_OF_RANGE, None),
    (f"SELECT 9223372036854775807 * length(name) FROM {T}", K.OVERFLOW, None),
    (f"SELECT length(name) % (length(name) - length(name)) FROM {T}", K.DIVISION_BY_ZERO, None),
    (f"SELECT regexp_matches(name, '(') FROM {T}", K.REGEX, None),
    (f"SELECT strptime(name, '%Y') FROM {T}", K.INVALID_INPUT, None),
    (f"SELECT (SELECT name FROM {T})", K.SUBQUERY_ROWS, None),
]  # fmt: skip


@pytest.mark.req("REQ-40", "grants-refusals")
@pytest.mark.parametrize(
    ("sql", "kind", "near"), ERRORS, ids=[f"{k.value}-{i}" for i, (_, k, _) in enumerate(ERRORS)]
)
def test_an_engine_error_names_its_kind_and_the_senders_words_only(
    sql: str,
    kind: FailureKind,
    near: str | None,
    client: TestClient,
    token: str,
    secret: Secret,
    workspace: Workspace,
) -> None:
    answer = ask(client, token, sql)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert (body["error"], body["kind"]) == ("query_failed", kind.value), body
    if near is not None:
        assert near in body["detail"], body["detail"]
    assert_says_nothing_of_the_policy(answer.text, secret, sql)
    event = last_query_event(workspace)
    assert event.outcome == "refused" and event.detail["reason"] == body["detail"]
    assert event.detail["failure_kind"] == kind.value and event.detail["reason_kind"] == "engine"
    assert_says_nothing_of_the_policy(json.dumps(event.detail, ensure_ascii=False), secret, sql)


def test_the_grant_with_the_secret_predicate_answers_when_nothing_fails(
    client: TestClient, token: str, secret: Secret, workspace: Workspace
) -> None:
    """The errors above come from a grant that works: the predicate removes its three people."""
    region = ask(client, token, f"SELECT count(*) FROM {SOCIAL}", purpose="小微企业园区产改职工参保核查")
    answer = ask(client, token, f"SELECT count(*) FROM {SOCIAL}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"][0][0] == region.json()["rows"][0][0] - len(secret.ids)


def test_the_portal_console_says_the_failure_in_chinese_without_the_policy(
    workspace: Workspace, client: TestClient, home: Path, secret: Secret
) -> None:
    console = TestClient(client.app)
    assert sign_in(console, "jx_zgh", demo_users(home)["jx_zgh"]["password"]).status_code == 303  # type: ignore[attr-defined]
    sql = f"SELECT count(*)\nFROM {SOCIAL}\nWHERE status = 1"
    form = {
        "sql": sql,
        "purpose": PURPOSE,
        "application": PARK_APP,
        "csrf_token": csrf_of(console.get("/query").text),
    }
    page = console.post("/query/run", data=form)
    assert page.status_code == 200
    assert "查询在 status 附近（第 3 行第 7 列）失败：有值无法转换为查询所需的类型" in page.text
    assert_says_nothing_of_the_policy(page.text, secret, sql)
    english = console.post("/query/run", data=form, cookies={"pubdata_lang": "en"})
    assert "the query failed near status (line 3, column 7)" in english.text
    exported = console.post("/query/export", data={**form, "format": "csv"})
    assert exported.status_code == 400
    assert_says_nothing_of_the_policy(exported.text, secret, sql)


# --- the same property over generated failing queries -----------------------------------------

COLUMNS = st.sampled_from(["name", "status", "insurance_type", "employer_name", "enrolled_on", "id_number"])
TYPES = st.sampled_from(["INTEGER", "DATE", "TINYINT", "UUID", "BLOB", "no_such_type", "DECIMAL(2, 1)"])


@st.composite
def failing_queries(draw: st.DrawFn, secret: Secret) -> str:
    """Queries over granted fields that tend to fail in the engine, some quoting the secret numbers."""
    column = draw(COLUMNS)
    literal = draw(st.sampled_from([*(f"'{i}'" for i in secret.ids), "1", "'x'", "0", "-1", "2147483648"]))
    shape = draw(
        st.sampled_from(
            [
                "SELECT count(*) FROM {t} WHERE {c} = {v}",
                "SELECT CAST({c} AS {type}) FROM {t}",
                "SELECT {c} + {v} FROM {t}",
                "SELECT length({c}) % ({v} - {v}) FROM {t}",
                "SELECT {c}, count(*) FROM {t}",
                "SELECT regexp_matches({c}, '(' || {v}) FROM {t}",
                "SELECT strptime({c}, '%Y') FROM {t} WHERE {c} <> {v}",
                "SELECT (SELECT {c} FROM {t}) = {v}",
                "SELECT nothing_{c} FROM {t} WHERE {c} IN ({v})",
            ]
        )
    )
    return shape.format(t=SOCIAL, c=column, v=literal, type=draw(TYPES))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_failing_query_reads_back_the_policy(
    data: st.DataObject, client: TestClient, token: str, secret: Secret, workspace: Workspace
) -> None:
    sql = data.draw(failing_queries(secret))
    answer = ask(client, token, sql)
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 200:
        return
    body = answer.json()
    said = body["detail"]
    for number in secret.ids:  # not even the numbers the sender wrote come back
        assert number not in said
    assert_says_nothing_of_the_policy(said, secret, sql)
    event = last_query_event(workspace)
    assert event.detail["reason"] == said
    assert_says_nothing_of_the_policy(json.dumps(event.detail, ensure_ascii=False), secret, sql)


# --- the explanation on its own ------------------------------------------------------------------


def test_a_stream_that_fails_after_its_first_batch_names_the_senders_column(tmp_path: Path) -> None:
    with SandboxedEngine([tmp_path], tmp_path / "tmp") as engine:
        enforced = (
            "SELECT CASE WHEN i < 5000 THEN i ELSE CAST('330881196502251631' || i AS INTEGER) END AS v "
            "FROM range(10000) AS __base_t(i)"
        )
        stream = engine.run(enforced, batch_rows=1024, source_sql="SELECT v\nFROM t")
        with pytest.raises(QueryFailed) as caught:
            for _ in stream:
                pass
    assert caught.value.kind == FailureKind.CONVERSION
    assert "330881196502251631" not in str(caught.value) and "__base" not in str(caught.value)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("Conversion Error: Could not convert string 'x' to INT32", FailureKind.CONVERSION),
        ('Binder Error: Referenced column "x" not found in FROM clause!', FailureKind.BINDER),
        ("Catalog Error: Scalar Function with name foo does not exist!", FailureKind.CATALOG),
        ("Out of Range Error: Left-shift value 70 is out of range", FailureKind.OUT_OF_RANGE),
        ("Out of Range Error: Overflow in addition of INT32 (2147483647 + 1)!", FailureKind.OVERFLOW),
        ("Invalid Input Error: Division by zero in expression (10 % 0).", FailureKind.DIVISION_BY_ZERO),
        ("Invalid Input Error: missing ): (", FailureKind.REGEX),
        ("Invalid Input Error: More than one row returned by a subquery", FailureKind.SUBQUERY_ROWS),
        ("Invalid Input Error: boom", FailureKind.INVALID_INPUT),
        ('Parser Error: syntax error at or near "SELECT"', FailureKind.SYNTAX),
        ("Out of Memory Error: failed to allocate data of size 2.0 GiB", FailureKind.OUT_OF_MEMORY),
        ("Not implemented Error: Unsupported type", FailureKind.NOT_SUPPORTED),
        ("Invalid Error: ArrowInvalid", FailureKind.ENGINE),
        ("", FailureKind.ENGINE),
    ],
)
def test_each_duckdb_message_has_a_stable_kind(message: str, kind: FailureKind) -> None:
    assert kind_of(message) is kind


def test_names_come_back_only_if_the_sender_wrote_them_as_names() -> None:
    policy_hint = 'Binder Error: Referenced column "secret" not found!\nCandidate bindings: "division_code"'
    assert "division_code" not in str(explain(policy_hint, "SELECT secret FROM t"))
    assert "near secret (line 1, column 8)" in str(explain(policy_hint, "SELECT secret FROM t"))
    # a name the sender wrote only inside a string literal is not theirs to read back
    quoted = 'Binder Error: Referenced column "division_code" not found!'
    assert "division_code" not in str(explain(quoted, "SELECT 'division_code' FROM t"))
    # internal names never, even if written (the rewrite refuses them anyway)
    assert "__base_t" not in str(explain('Binder Error: "__base_t"', "SELECT __base_t FROM t"))
    # a value DuckDB quotes in double quotes is not a name unless it starts like one
    dated = 'Conversion Error: date field value out of range: "330881196502251631"'
    assert "3308" not in str(explain(dated, 'SELECT "330881196502251631" FROM t'))
