"""Hostile SQL sent straight to the engine, past the policy layer: each is refused or stopped, no
file outside the request's views is read, and the engine answers the next request normally.

Two walls are tested separately: the engine's relation guard (`QueryRefused`) and, beneath it, the
locked DuckDB configuration, which must refuse file access, settings and extensions on its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pubdata.errors import PubdataError
from pubdata.gateway.engine import (
    QueryError,
    QueryRefused,
    QueryTimeout,
    SandboxedEngine,
    open_locked_connection,
)

CANARY = "CANARY-not-granted-7d1e"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with a granted file and, beside it, an entry the request was not granted."""
    root = tmp_path_factory.mktemp("attacks")
    (root / "data" / "granted").mkdir(parents=True)
    (root / "data" / "other").mkdir()
    pq.write_table(pa.table({"n": [1, 2, 3]}), root / "data" / "granted" / "part-0.parquet")
    pq.write_table(pa.table({"secret": [CANARY]}), root / "data" / "other" / "part-0.parquet")
    (root / "outside.csv").write_text(f"secret\n{CANARY}\n")
    return root


@pytest.fixture(scope="module")
def engine(home: Path) -> Iterator[SandboxedEngine]:
    with SandboxedEngine([home / "data"], home / "tmp", time_budget_s=10) as engine:
        yield engine


@pytest.fixture
def tables(home: Path) -> dict[str, list[str]]:
    return {"__base_granted": [str(home / "data" / "granted" / "part-0.parquet")]}


def still_serves(engine: SandboxedEngine, tables: dict[str, list[str]]) -> None:
    with engine.run("SELECT sum(n)::INTEGER AS total FROM __base_granted", tables) as stream:
        assert stream.read_all().to_pylist() == [{"total": 6}]


def attacks(home: Path) -> list[str]:
    other = home / "data" / "other" / "part-0.parquet"
    return [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        f"SELECT * FROM '{home / 'outside.csv'}'",
        f"SELECT * FROM read_parquet('{other}')",
        f"SELECT * FROM '{other}'",
        f"SELECT * FROM parquet_scan(['{other}'])",
        f"SELECT * FROM glob('{home}/data/*/*')",
        f"SELECT * FROM read_text('{other}')",
        f"SELECT * FROM parquet_metadata('{other}')",
        f"SELECT * FROM __base_granted, '{other}'",
        f"SELECT (SELECT secret FROM '{other}')",
        f"SELECT * FROM __base_granted WHERE EXISTS (FROM '{other}')",
        # A CTE shields a name only in its own scope; elsewhere the same name is the file again.
        f'SELECT * FROM (WITH "{other}" AS (SELECT 1) SELECT * FROM "{other}"), "{other}"',
        f'WITH "{other}" AS (SELECT * FROM "{other}") SELECT * FROM "{other}"',
        "SELECT * FROM query('SELECT 1')",
        "SELECT * FROM query_table('__base_granted')",
        "SELECT * FROM duckdb_views",
        "SELECT * FROM duckdb_views()",
        "SELECT * FROM duckdb_settings()",
        "SELECT * FROM information_schema.tables",
        "SELECT * FROM temp.main.__base_granted",
        "SELECT * FROM __base_granted AT (VERSION => 1)",
        "SHOW TABLES",
        "DESCRIBE __base_granted",
        "SUMMARIZE __base_granted",
        f"COPY (SELECT 1) TO '{home / 'data' / 'granted' / 'part-1.parquet'}'",
        f"COPY __base_granted FROM '{home / 'outside.csv'}'",
        f"EXPORT DATABASE '{home / 'data' / 'dump'}'",
        "ATTACH '/tmp/x.db'",
        "ATTACH ':memory:' AS scratch",
        "DETACH scratch",
        "USE scratch",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET memory_limit = '64GB'",
        "RESET memory_limit",
        "RESET threads",
        "PRAGMA enable_profiling",
        "PRAGMA version",
        "CALL pragma_version()",
        "CHECKPOINT",
        "SET VARIABLE __pk_slot = 'chosen'",
        "CREATE TABLE leak AS SELECT * FROM __base_granted",
        "CREATE TEMP VIEW __base_granted AS SELECT 42 AS n",
        "CREATE MACRO m(x) AS x",
        "DROP VIEW __base_granted",
        "INSERT INTO __base_granted VALUES (4)",
        "EXPLAIN SELECT * FROM __base_granted",
        "PIVOT __base_granted ON n",
        "SELECT 1; SELECT 2",
        "SELECT * FROM secret_arrow_table",
    ]


def test_every_attack_is_refused_and_the_engine_stays_usable(
    engine: SandboxedEngine, tables: dict[str, list[str]], home: Path
) -> None:
    secret_arrow_table = pa.table({"secret": [CANARY]})  # what a replacement scan would read
    assert secret_arrow_table.num_rows == 1
    for sql in attacks(home):
        with pytest.raises(QueryRefused), engine.run(sql, tables) as stream:
            pytest.fail(f"ran: {sql} -> {stream.read_all().to_pylist()}")
        still_serves(engine, tables)
    assert not (home / "data" / "granted" / "part-1.parquet").exists()
    assert not (home / "data" / "dump").exists()


LOCK_REFUSES = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "COPY (SELECT 1) TO '/tmp/pubdata-engine-copy.csv'",
    "EXPORT DATABASE '/tmp/pubdata-engine-export'",
    "ATTACH '/tmp/pubdata-engine-attach.db'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET memory_limit = '64GB'",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "SET python_enable_replacements = true",
    "RESET memory_limit",
    "PRAGMA memory_limit = '64GB'",
    "SELECT * FROM secret_arrow_table",
]


@pytest.mark.parametrize("sql", LOCK_REFUSES)
def test_the_locked_configuration_refuses_on_its_own(home: Path, sql: str) -> None:
    """Without the guard in front, DuckDB's lock still refuses file, setting and extension access."""
    secret_arrow_table = pa.table({"secret": [CANARY]})
    assert secret_arrow_table.num_rows == 1
    con = open_locked_connection([home / "data"], home / "tmp")
    cursor = con.cursor()
    with pytest.raises(duckdb.Error):
        cursor.execute(sql).fetchall()
    assert cursor.execute("SELECT current_setting('lock_configuration')").fetchall() == [(True,)]
    con.close()
    assert not Path("/tmp/pubdata-engine-copy.csv").exists()


def test_the_lock_alone_would_read_any_file_in_the_data_directory(home: Path) -> None:
    """Why the guard exists: DuckDB's path check is per directory, not per granted file.

    The data directory must stay readable for the views, so an unregistered entry's file is
    reachable by name at the DuckDB level; only the guard (tested above) keeps it out.
    """
    con = open_locked_connection([home / "data"], home / "tmp")
    other = home / "data" / "other" / "part-0.parquet"
    assert con.cursor().execute(f"SELECT secret FROM '{other}'").fetchall() == [(CANARY,)]
    con.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM range(1000000000000)",
        "SELECT count(*) FROM range(100000000) a, range(100000000) b",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
    ],
)
def test_time_budget_interrupts_runaway_queries(
    engine: SandboxedEngine, tables: dict[str, list[str]], sql: str
) -> None:
    started = time.perf_counter()
    with pytest.raises(QueryTimeout, match=r"time budget of 0\.5 s"):
        engine.run(sql, tables, time_budget_s=0.5).read_all()
    assert time.perf_counter() - started < 0.5 + 1.5
    still_serves(engine, tables)


def test_time_budget_covers_a_stream_that_is_read_forever(
    engine: SandboxedEngine, tables: dict[str, list[str]]
) -> None:
    started = time.perf_counter()
    stream = engine.run("SELECT * FROM range(1000000000000)", time_budget_s=0.5, batch_rows=4096)
    with pytest.raises(QueryTimeout):
        for _ in stream:
            pass
    assert 0.4 < time.perf_counter() - started < 2.0
    assert stream.rows > 0
    still_serves(engine, tables)


def test_a_timeout_stops_only_its_own_request(engine: SandboxedEngine, tables: dict[str, list[str]]) -> None:
    patient = engine.run("SELECT i FROM range(200000) t(i)", batch_rows=2048, time_budget_s=30)
    first = next(iter(patient))
    with pytest.raises(QueryTimeout):
        engine.run("SELECT count(*) FROM range(1000000000000)", time_budget_s=0.3).read_all()
    with patient:
        assert first.num_rows + sum(b.num_rows for b in patient) == 200000


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT repeat('x', 10000000000)",
        "SELECT length(repeat('x', 1e10::BIGINT))",
        "SELECT string_agg(repeat('x', 1000), '') FROM range(100000000)",
        "SELECT count(*) FROM range(1e12)",
    ],
)
def test_giant_values_fail_cleanly(engine: SandboxedEngine, tables: dict[str, list[str]], sql: str) -> None:
    with pytest.raises(QueryError):
        engine.run(sql, tables, time_budget_s=5).read_all()
    still_serves(engine, tables)


FROM_ITEMS = st.sampled_from(
    [
        "__base_granted",
        "'{other}'",
        '"{other}"',
        "read_parquet('{other}')",
        "read_csv('{outside}')",
        "(SELECT * FROM '{other}')",
        "range(3) t(n)",
        "query_table('__base_granted')",
        "duckdb_views",
        "c",
    ]
)
SHAPES = st.sampled_from(
    [
        "SELECT * FROM {a}",
        "SELECT * FROM {a}, {b}",
        "SELECT * FROM {a} UNION ALL SELECT * FROM {b}",
        "WITH c AS (SELECT * FROM {a}) SELECT * FROM {b}",
        "SELECT * FROM (WITH c AS (SELECT 1 AS n) SELECT * FROM {a}), {b}",
        "SELECT (SELECT count(*) FROM {a}) AS n FROM {b}",
        "SELECT * FROM {a} WHERE EXISTS (SELECT * FROM {b})",
        "SELECT * FROM {a} CROSS JOIN LATERAL (SELECT * FROM {b})",
    ]
)


@settings(max_examples=60, deadline=None)
@given(shape=SHAPES, a=FROM_ITEMS, b=FROM_ITEMS)
def test_generated_queries_never_read_an_ungranted_file(
    engine: SandboxedEngine, home: Path, shape: str, a: str, b: str
) -> None:
    places = {"other": home / "data" / "other" / "part-0.parquet", "outside": home / "outside.csv"}
    sql = shape.format(a=a.format(**places), b=b.format(**places))
    tables = {"__base_granted": [str(home / "data" / "granted" / "part-0.parquet")]}
    try:
        with engine.run(sql, tables, time_budget_s=5) as stream:
            result = stream.read_all()
    except PubdataError:
        return  # refused or failed cleanly
    assert CANARY not in str(result.to_pylist()), sql
