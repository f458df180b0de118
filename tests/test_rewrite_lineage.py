"""Who accessed what, whatever the SQL says (REQ-40/41).

Served fields are traced by lineage, not by output name: a column list on an alias, an expression
around the field or a rename inside a subquery still names the field, in the audit event and in
``X-Pubdata-Masked``. Every served record's data subject is indexed — masked or not — from a keyed
hash the engine computes beside the answer in a hidden column that no export format lets out.

The rewrite half runs on the policies of the golden fixtures (``tests/fixtures/policy/08_lineage.sql``
holds the SQL); the gateway half on the demo province, through `run_query`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook
from sqlalchemy import select

from gateway_support import SOCIAL, raw_rows
from pubdata import audit
from pubdata.clock import Clock
from pubdata.db.models import AuditEvent, AuditSubject
from pubdata.demo.build import build_demo
from pubdata.demo.world import PARK_CHECK_PURPOSE
from pubdata.gateway.engine import SandboxedEngine
from pubdata.gateway.identity import find_user
from pubdata.gateway.query import QueryResponse, run_query
from pubdata.gateway.rewrite import rewrite
from pubdata.gateway.rewrite.attach_subjects import SUBJECT_PREFIX
from pubdata.gateway.roles import Principal, Scope
from pubdata.workspace import Workspace
from test_rewrite import KEY, POLICY_SETS, _load, queries

SUBJECTS = POLICY_SETS["subjects"]
POPULATION = "gat_population"

# --- the rewrite: lineage of each served column -------------------------------------------------

LINEAGE = [
    ("SELECT c FROM persons AS t(c, x)", {"c": {"persons.id_number"}}),
    # Two columns are now called income; DuckDB reads the first, the trace names both.
    ("SELECT income FROM persons AS t(income)", {"income": {"persons.id_number", "persons.income"}}),
    ("SELECT concat(id_number, '') AS k FROM persons", {"k": {"persons.id_number"}}),
    ("SELECT y FROM (SELECT id_number AS y, income FROM persons) AS s", {"y": {"persons.id_number"}}),
    ("WITH s(a) AS (SELECT id_number, name FROM persons) SELECT a, name FROM s",
     {"a": {"persons.id_number"}, "name": {"persons.name"}}),
    ("SELECT z FROM (SELECT * FROM persons) AS s(z)", {"z": {"persons.id_number"}}),
    ("SELECT name FROM companies UNION ALL SELECT hospital FROM visits",
     {"name": {"companies.name", "visits.hospital"}}),
    ("SELECT (SELECT max(person_id) FROM visits) AS m FROM companies", {"m": {"visits.person_id"}}),
    ("SELECT upper(p.name) AS u, v.hospital FROM persons p JOIN visits v ON v.person_id = p.id_number",
     {"u": {"persons.name"}, "hospital": {"visits.hospital"}}),
]  # fmt: skip


@pytest.mark.req("REQ-40", "api-calls")
@pytest.mark.parametrize("sql, expected", LINEAGE, ids=[s for s, _ in LINEAGE])
def test_each_served_column_knows_the_fields_it_derives_from(sql: str, expected: dict[str, set[str]]) -> None:
    served = rewrite(sql, SUBJECTS).served
    assert {c.name: {f"{e}.{f}" for e, f in c.fields} for c in served} == expected


@pytest.mark.req("REQ-40", "api-calls")
def test_fields_read_follow_renames_and_predicates() -> None:
    result = rewrite("SELECT c FROM persons AS t(c) WHERE income > 5", SUBJECTS)
    assert result.columns == {"persons": ("id_number", "income")}
    renamed = rewrite("SELECT y FROM (SELECT mobile AS y FROM persons) AS s", SUBJECTS)
    assert renamed.columns == {"persons": ("mobile",)}


@pytest.mark.req("REQ-40", "api-calls")
def test_a_query_whose_scopes_cannot_be_built_names_every_field() -> None:
    """One alias used twice is the engine's to refuse; the trace names every field rather than fail."""
    result = rewrite("SELECT p.name FROM persons p, companies p", SUBJECTS)
    assert result.columns["persons"] == tuple(SUBJECTS.tables["persons"].columns)
    assert set(result.columns) == {"persons", "companies"}


# --- the rewrite: the hidden subject column -----------------------------------------------------


@pytest.fixture(scope="module")
def key_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def engine(key_home: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    _load(con, "__base_")
    con.execute(f"SET VARIABLE __pk_g1 = '{KEY}'")
    for name, value in audit.subject_hash_variables(key_home).items():
        con.execute(f"SET VARIABLE {name} = $1", [value])
    yield con
    con.close()


CARRIED = [
    "SELECT c FROM persons AS t(c, x)",
    "SELECT concat(id_number, '') AS k FROM persons",
    "SELECT y FROM (SELECT id_number AS y, income FROM persons) AS s WHERE income > 1000",
    "WITH s AS (SELECT id_number AS k FROM persons) SELECT k FROM s ORDER BY k LIMIT 2",
    "SELECT id_number, income FROM persons ORDER BY income DESC LIMIT 3",
    "SELECT * FROM (SELECT * FROM persons) AS s",
]
NOT_CARRIED = [
    "SELECT division_code, count(*) AS n FROM persons GROUP BY division_code",
    "SELECT DISTINCT division_code FROM persons",
    "SELECT to_json(p) AS j FROM persons AS p",
    "SELECT p FROM persons AS p",
    "SELECT id_number FROM persons UNION ALL SELECT person_id FROM visits",
    "WITH s AS (SELECT id_number AS k FROM persons) SELECT k FROM s WHERE k IN (SELECT * FROM s)",
    "SELECT * FROM persons AS p(a, b, c, d, e, f, g)",
    "SELECT * FROM persons ORDER BY ALL",
]


@pytest.mark.req("REQ-41", "subject-access")
@pytest.mark.parametrize("sql", CARRIED)
def test_row_level_answers_carry_each_rows_subject_hash(
    sql: str, engine: duckdb.DuckDBPyConnection, key_home: Path
) -> None:
    result = rewrite(sql, SUBJECTS)
    assert set(result.subject_columns.values()) == {"persons"}
    table = engine.sql(result.sql).to_arrow_table()
    raw = engine.sql("SELECT id_number FROM __base_persons").fetchall()
    hashes = {audit.subject_hash(key_home, r[0]) for r in raw}
    for name in result.subject_columns:
        carried = set(table.column(name).to_pylist())
        assert carried and carried <= hashes


@pytest.mark.req("REQ-41", "subject-access")
@pytest.mark.parametrize("sql", NOT_CARRIED)
def test_answers_whose_rows_are_not_records_carry_no_subject(
    sql: str, engine: duckdb.DuckDBPyConnection
) -> None:
    result = rewrite(sql, SUBJECTS)
    assert not result.subject_columns
    names = engine.sql(result.sql).columns if "ORDER BY ALL" not in sql else []
    assert not [n for n in names if n.startswith(SUBJECT_PREFIX)]


@pytest.mark.req("REQ-41", "subject-access")
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sql=queries(), wrap=st.booleans())
def test_the_hidden_columns_change_no_answer(sql: str, wrap: bool, engine: duckdb.DuckDBPyConnection) -> None:
    """Whatever the shape, the answer without the hidden columns is the answer without subject keys,
    and the lineage lists exactly the columns the caller sees."""
    if wrap:
        sql = f"SELECT * FROM ({sql}) AS w"
    plain = engine.sql(rewrite(sql, POLICY_SETS["default"]).sql)
    result = rewrite(sql, SUBJECTS)
    carried = engine.sql(result.sql)
    shown = [i for i, name in enumerate(carried.columns) if not name.startswith(SUBJECT_PREFIX)]
    assert [carried.columns[i] for i in shown] == plain.columns
    assert len(result.served) == len(shown)
    rows = [tuple(r[i] for i in shown) for r in carried.fetchall()]
    assert sorted(map(repr, rows)) == sorted(map(repr, plain.fetchall()))


# --- the gateway, on the demo province ----------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, pinned_clock: Clock) -> Workspace:
    home = tmp_path_factory.mktemp("lineage") / "home"
    build_demo(home, scale=0.02, clock=pinned_clock)
    return Workspace.open(home, clock=pinned_clock)


@pytest.fixture(scope="module")
def gateway(workspace: Workspace) -> Iterator[SandboxedEngine]:
    with SandboxedEngine.for_workspace(workspace) as engine:
        yield engine


def _principal(workspace: Workspace, login: str) -> Principal:
    with workspace.sessions() as session:
        user = find_user(session, login)
        return Principal(user, user.organisation, user.roles, frozenset(Scope))


def _ask(workspace: Workspace, engine: SandboxedEngine, login: str, sql: str, fmt: str = "json",
         ) -> tuple[QueryResponse, bytes, AuditEvent]:  # fmt: skip
    if login == "zj_gat":
        purpose, application = "人口信息核验", "gat_population_service"
    else:
        purpose, application = PARK_CHECK_PURPOSE, "jx_park_workers"
    answer = run_query(workspace, _principal(workspace, login), sql, purpose, application, fmt, engine=engine)
    body = b"".join(answer.body)
    with workspace.sessions() as session:
        event = audit.list_events(session, None, limit=1)[-1]
    return answer, body, event


def _who(workspace: Workspace, id_number: str) -> list[int]:
    with workspace.sessions() as session:
        return [e.id for e in audit.who_accessed(session, workspace.home, id_number=id_number)]


RENAMES = [
    f"SELECT c FROM {POPULATION} AS t(c, x) ORDER BY c LIMIT 3",
    f"SELECT concat(id_number, '') AS k FROM {POPULATION} ORDER BY k LIMIT 3",
    f"SELECT y FROM (SELECT id_number AS y FROM {POPULATION}) AS s ORDER BY y LIMIT 3",
]


@pytest.mark.req("REQ-40", "api-calls")
@pytest.mark.req("REQ-41", "subject-access")
@pytest.mark.parametrize("sql", RENAMES, ids=["alias column list", "concat", "subquery rename"])
def test_renamed_identity_numbers_are_audited_and_indexed(
    workspace: Workspace, gateway: SandboxedEngine, sql: str
) -> None:
    _, body, event = _ask(workspace, gateway, "zj_gat", sql)
    served = [row[0] for row in json.loads(body)["rows"]]
    assert len(served) == 3
    assert "id_number" in event.detail["fields"][POPULATION]
    assert list(event.detail["served_fields"].values()) == [[f"{POPULATION}.id_number"]]
    assert event.detail["subjects_indexed"] == 3
    for id_number in served:
        assert event.id in _who(workspace, id_number)


@pytest.mark.req("REQ-40", "api-calls")
def test_masked_header_follows_an_alias_rename(workspace: Workspace, gateway: SandboxedEngine) -> None:
    answer, body, event = _ask(
        workspace, gateway, "jx_zgh", f"SELECT status FROM {SOCIAL} AS t(status) LIMIT 5"
    )
    assert f"{SOCIAL}.id_number=mask_id_number" in answer.headers["X-Pubdata-Masked"]
    assert "id_number" in event.detail["fields"][SOCIAL]
    assert f"{SOCIAL}.id_number=mask_id_number" in event.detail["served_fields"]["status"]
    assert all("*" in row[0] for row in json.loads(body)["rows"])  # masked numbers, under another name


@pytest.mark.req("REQ-41", "subject-access")
def test_who_accessed_finds_the_consumer_who_saw_the_number_masked(
    workspace: Workspace, gateway: SandboxedEngine
) -> None:
    sql = f"SELECT id_number, name FROM {SOCIAL} ORDER BY id_number LIMIT 20"
    _, body, event = _ask(workspace, gateway, "jx_zgh", sql)
    masked = [row[0] for row in json.loads(body)["rows"]]
    assert masked and all("********" in m for m in masked)
    raw = [str(r) for r in raw_rows(workspace, SOCIAL).column("id_number").to_pylist()]
    matches = {m: [r for r in raw if r[:6] == m[:6] and r[-4:] == m[-4:]] for m in masked}
    unique = [found[0] for found in matches.values() if len(found) == 1]
    assert unique
    for id_number in unique:
        assert event.id in _who(workspace, id_number)
    assert "subjects_aggregated" not in event.detail


@pytest.mark.req("REQ-41", "subject-access")
def test_an_aggregate_indexes_no_one_and_says_subjects_were_aggregated(
    workspace: Workspace, gateway: SandboxedEngine
) -> None:
    _, _, event = _ask(workspace, gateway, "jx_zgh", f"SELECT status, count(*) FROM {SOCIAL} GROUP BY status")
    assert event.detail["subjects_indexed"] == 0
    assert event.detail["subjects_aggregated"] == [SOCIAL]


def _tables(fmt: str, body: bytes) -> tuple[list[str], list[list[Any]]]:
    """Column names and rows of an answer, read back as a caller would."""
    if fmt == "json":
        answer = json.loads(body)
        return [c["name"] for c in answer["columns"]], answer["rows"]
    if fmt == "jsonl":
        rows = [json.loads(line) for line in body.decode().splitlines() if line]
        return list(rows[0]), [list(r.values()) for r in rows]
    if fmt == "csv":
        lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        return lines[0], lines[1:]
    if fmt == "arrow":
        table = pa.ipc.open_stream(body).read_all()
        return table.column_names, [list(r.values()) for r in table.to_pylist()]
    if fmt == "parquet":
        table = pq.read_table(io.BytesIO(body))
        return table.column_names, [list(r.values()) for r in table.to_pylist()]
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(body)).get_sheet_by_index(0).to_python()
    return [str(c) for c in sheet[0]], [list(r) for r in sheet[1:]]


@pytest.mark.req("REQ-41", "subject-access")
@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "arrow", "parquet", "xlsx"])
def test_the_hidden_subject_column_never_reaches_the_caller(
    workspace: Workspace, gateway: SandboxedEngine, fmt: str
) -> None:
    sql = f"SELECT * FROM (SELECT * FROM {SOCIAL}) AS s ORDER BY id_number LIMIT 5"
    _, body, event = _ask(workspace, gateway, "jx_zgh", sql, fmt)
    names, rows = _tables(fmt, body)
    assert len(rows) == 5 and event.detail["subjects_indexed"] >= 5
    assert not [n for n in names if n.startswith(SUBJECT_PREFIX)]
    assert len(names) == len(event.detail["served_fields"])
    with workspace.sessions() as session:
        query = select(AuditSubject.subject_hash).where(AuditSubject.event_id == event.id)
        hashes = set(session.scalars(query))
    assert hashes
    text = repr(rows)
    for digest in hashes:
        assert digest not in text


@pytest.mark.req("REQ-41", "subject-access")
def test_identity_numbers_served_as_stored_by_an_aggregate_are_indexed_from_their_values(
    workspace: Workspace, gateway: SandboxedEngine
) -> None:
    inner = f"SELECT id_number AS k FROM {POPULATION}"
    sql = f"SELECT k, count(*) AS n FROM ({inner}) GROUP BY k ORDER BY k LIMIT 4"
    _, body, event = _ask(workspace, gateway, "zj_gat", sql)
    served = [row[0] for row in json.loads(body)["rows"]]
    assert event.detail["subjects_aggregated"] == [POPULATION]
    assert event.detail["subjects_indexed"] == 4
    for id_number in served:
        assert event.id in _who(workspace, id_number)
