"""Hostile SQL against the policy rewrite: every attack family is refused or answered without leaking.

Refusals are checked by message (it must name what the user wrote and nothing of the policy);
mask oracles and row-filter escapes are executed on a real DuckDB holding the raw rows, and their
answers must equal the answer over hand-written masked views and contain no raw value.
"""

from __future__ import annotations

import pytest

from pubdata.gateway.policy_types import PolicyViolation
from pubdata.gateway.rewrite import rewrite
from test_rewrite import KEY, PERSONS, POLICY_SETS, Databases, assert_no_leak, databases, same_rows

__all__ = ["databases"]  # the shared module-scoped fixture

RAW_ID = PERSONS[0][0]

REFUSED: dict[str, list[tuple[str, str]]] = {
    "file and network reads": [
        ("SELECT * FROM read_csv('/etc/passwd')", "table functions are not allowed: READ_CSV"),
        ("SELECT * FROM read_csv_auto('/etc/passwd')", "table functions are not allowed: read_csv_auto"),
        ("SELECT * FROM read_text('/etc/passwd')", "table functions are not allowed: read_text"),
        ("SELECT read_text('/etc/passwd')", "function not allowed: read_text"),
        ("SELECT * FROM read_parquet('s3://bucket/x.parquet')", "table functions are not allowed"),
        ("SELECT * FROM read_json('https://example.com/x.json')", "table functions are not allowed"),
        ("SELECT * FROM glob('/*')", "table functions are not allowed: glob"),
        ("SELECT * FROM 'x.parquet'", "unknown table or no grant for it: x.parquet"),
        ('SELECT * FROM "/etc/passwd"', "unknown table or no grant for it: /etc/passwd"),
        ("SELECT * FROM 'https://example.com/x.csv'", "unknown table or no grant for it: https://"),
        ("SELECT * FROM persons p, read_csv('/etc/passwd') f", "table functions are not allowed"),
        ("SELECT (SELECT count(*) FROM read_blob('/etc/shadow'))", "table functions are not allowed"),
        ("SELECT * FROM persons p JOIN LATERAL read_csv('/etc/passwd') ON true", "not allowed: READ_CSV"),
        ("SELECT 'x'.read_text()", "function not allowed: read_text"),
    ],
    "escape hatches to other relations and settings": [
        ("SELECT * FROM query_table('__base_persons')", "table functions are not allowed: query_table"),
        ("SELECT query_table('persons')", "function not allowed: query_table"),
        ("SELECT * FROM query('SELECT * FROM __base_persons')", "table functions are not allowed: query"),
        ("SELECT getvariable('__pk_g1')", "function not allowed: getvariable"),
        ("SELECT current_setting('allowed_directories')", "function not allowed: current_setting"),
        ("SELECT list_transform([1], x -> query_table('t'))", "function not allowed: query_table"),
        ("SELECT which_secret('s3://x', 's3')", "function not allowed: which_secret"),
        ("SELECT getenv('HOME')", "function not allowed: getenv"),
        ("SELECT * FROM range(1000000000000)", "table functions are not allowed"),
        ("SELECT COLUMNS('.*') FROM persons", "function not allowed: COLUMNS"),
    ],
    "catalogue introspection": [
        ("SELECT * FROM information_schema.tables", "catalogue introspection is not available"),
        ("SELECT * FROM information_schema.columns", "catalogue introspection is not available"),
        ("SELECT * FROM duckdb_tables()", "table functions are not allowed: duckdb_tables"),
        ("SELECT * FROM duckdb_views", "catalogue introspection is not available: duckdb_views"),
        ("SELECT * FROM pragma_table_info('__base_persons')", "table functions are not allowed"),
        ("SELECT * FROM pg_catalog.pg_class", "catalogue introspection is not available"),
        ("SELECT * FROM sqlite_master", "catalogue introspection is not available"),
        ("SELECT * FROM temp.main.persons", "catalogue introspection is not available"),
        ("SELECT version()", "function not allowed"),
        ("SELECT current_database()", "function not allowed"),
    ],
    "statements other than one query": [
        ("SELECT 1; SELECT 2", "exactly one statement is allowed, found 2"),
        ("SELECT * FROM persons; DROP TABLE x", "exactly one statement is allowed, found 2"),
        ("", "exactly one statement is allowed, found 0"),
        ("ATTACH ':memory:' AS m", "only queries are allowed, not ATTACH"),
        ("ATTACH '/tmp/other.db' AS m", "only queries are allowed, not ATTACH"),
        ("DETACH m", "only queries are allowed, not DETACH"),
        ("COPY persons TO '/tmp/x.csv'", "only queries are allowed, not COPY"),
        ("COPY (SELECT * FROM persons) TO '/tmp/x.csv'", "only queries are allowed, not COPY"),
        ("EXPORT DATABASE '/tmp/x'", "the query could not be parsed"),
        ("CREATE MACRO m(a) AS a", "only queries are allowed, not CREATE"),
        ("CREATE TABLE x AS SELECT * FROM persons", "only queries are allowed, not CREATE"),
        ("CREATE VIEW persons AS SELECT 1", "only queries are allowed, not CREATE"),
        ("DROP VIEW __base_persons", "only queries are allowed, not DROP"),
        ("INSERT INTO persons VALUES (1)", "only queries are allowed, not INSERT"),
        ("UPDATE persons SET name = 'x'", "only queries are allowed, not UPDATE"),
        ("DELETE FROM persons", "only queries are allowed, not DELETE"),
        (
            "WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM x",
            "not allowed in a query: INSERT",
        ),
        ("SET VARIABLE __pk_g1 = 'x'", "only queries are allowed, not SET"),
        ("SET memory_limit = '10GB'", "only queries are allowed, not SET"),
        ("RESET memory_limit", "only queries are allowed, not RESET"),
        ("PRAGMA database_list", "only queries are allowed, not PRAGMA"),
        ("INSTALL httpfs", "only queries are allowed, not INSTALL"),
        ("LOAD httpfs", "only queries are allowed, not LOAD"),
        ("CALL pragma_version()", "only queries are allowed, not CALL"),
        ("EXPLAIN SELECT * FROM persons", "only queries are allowed, not EXPLAIN"),
        ("EXPLAIN ANALYZE SELECT * FROM persons", "only queries are allowed, not EXPLAIN"),
        ("SUMMARIZE persons", "only queries are allowed, not SUMMARIZE"),
        ("DESCRIBE persons", "only queries are allowed, not DESCRIBE"),
        ("SHOW TABLES", "only queries are allowed, not SHOW"),
        ("BEGIN TRANSACTION", "only queries are allowed, not BEGIN"),
        ("CHECKPOINT", "only queries are allowed, not this statement"),
        ("USE memory", "only queries are allowed, not USE"),
        ("VALUES (1)", "only queries are allowed, not a bare VALUES list"),
        ("PIVOT persons ON division_code USING count(*)", "only queries are allowed"),
        ("SELECT * INTO x FROM persons", "not allowed in a query: SELECT … INTO"),
        ("SELECT * FROM persons FOR UPDATE", "not allowed in a query: row locks"),
        ("SELECT ?", "not allowed in a query: query parameters"),
        ("SELECT $1", "not allowed in a query: query parameters"),
        ("SELECT FROM WHERE", "the query could not be parsed"),
    ],
    "reserved names and unknown tables": [
        ("SELECT * FROM __base_persons", "names starting with __ are reserved: __base_persons"),
        ('SELECT * FROM "__BASE_PERSONS"', "names starting with __ are reserved"),
        ('SELECT * FROM main."__base_persons"', "names starting with __ are reserved"),
        ("WITH __base_persons AS (SELECT 1) SELECT * FROM persons", "names starting with __ are reserved"),
        ("SELECT * FROM persons AS __p", "names starting with __ are reserved: __p"),
        ("SELECT 1 AS __x", "names starting with __ are reserved: __x"),
        ("SELECT * FROM people", "unknown table or no grant for it: people"),
        ("SELECT * FROM other.persons", "unknown table or no grant for it: other.persons"),
        ("SELECT * FROM memory.other.persons", "unknown table or no grant for it: memory.other.persons"),
        ('SELECT * FROM "pers\u200bons"', "unknown table or no grant for it: pers\u200bons"),
        ('SELECT * FROM "persons "', "unknown table or no grant for it: persons "),
        ("SELECT * FROM \u0440ersons", "unknown table or no grant for it: \u0440ersons"),  # Cyrillic р
    ],
    "table modifiers and unbounded recursion": [
        ("SELECT * FROM persons FOR VERSION AS OF 1", "not allowed on persons: time travel"),
        ("SELECT * FROM persons FOR TIMESTAMP AS OF now()", "not allowed on persons: time travel"),
        ("SELECT * FROM persons AT (VERSION => 1)", "not allowed on persons: time travel"),
        ("SELECT * FROM persons WITH (NOLOCK)", "not allowed on persons: table hints"),
        (
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r",
            "recursive CTEs are not allowed",
        ),
    ],
}


@pytest.mark.req("REQ-17", "refuse-outside")
@pytest.mark.parametrize(
    ("sql", "message"),
    [
        pytest.param(sql, msg, id=f"{family}: {sql[:60]}")
        for family, cases in REFUSED.items()
        for sql, msg in cases
    ],
)
def test_attack_is_refused_with_a_clear_message(sql: str, message: str) -> None:
    with pytest.raises(PolicyViolation) as refusal:
        rewrite(sql, POLICY_SETS["default"])
    text = str(refusal.value)
    assert message in text
    for internal in ("3301%", "********", "__pk_", KEY, "SUBSTRING"):
        assert internal not in text, f"refusal leaks policy internals: {text}"


#: Queries that try to read a masked value or a filtered-out row; each must get the masked answer.
ORACLES = [
    f"SELECT name FROM persons WHERE id_number = '{RAW_ID}'",
    f"SELECT count(*) FROM persons WHERE id_number = '{RAW_ID}'",
    "SELECT count(*) FROM persons WHERE id_number LIKE '330102198001%'",
    "SELECT id_number FROM persons ORDER BY id_number",
    "SELECT name, row_number() OVER (ORDER BY mobile) FROM persons",
    "SELECT min(id_number), max(id_number), min(name), max(mobile) FROM persons",
    "SELECT hash(id_number), md5(name) FROM persons",
    "SELECT to_json(t) FROM persons t",
    "SELECT t.* FROM persons t",
    "SELECT t FROM persons t",
    "SELECT CAST(t AS VARCHAR) FROM persons t",
    "SELECT struct_pack(a := t.id_number, b := t.name) FROM persons t",
    "SELECT {'id': t.id_number} FROM persons t",
    "SELECT substring(id_number, 7, 8) FROM persons",
    f"SELECT p.name FROM persons p JOIN (SELECT '{RAW_ID}' AS raw) r ON p.id_number = r.raw",
    "SELECT p.name, v.hospital FROM persons p JOIN visits v ON p.id_number = v.person_id",
    "SELECT * FROM persons WHERE division_code LIKE '3302%' OR true",
    "SELECT * FROM persons WHERE NOT (division_code LIKE '3301%')",
    "SELECT DISTINCT division_code FROM persons",
    "SELECT DISTINCT division_code FROM visits",
    "SELECT name FROM persons UNION SELECT name FROM persons",
    "SELECT id_number FROM persons UNION ALL SELECT person_id FROM visits",
    "SELECT count(*), sum(income), max(income) FROM persons",
    "WITH persons AS (SELECT * FROM persons WHERE true OR income > 0) SELECT * FROM persons",
    "SELECT * FROM persons t(a, b, c)",
    "SELECT * FROM persons PIVOT (count(*) FOR division_code IN ('330102001', '330203002'))",
    "SELECT * FROM persons UNPIVOT (v FOR k IN (name, mobile))",
    "SELECT * FROM persons QUALIFY rank() OVER (ORDER BY income) <= 10",
    "SELECT * FROM persons TABLESAMPLE 100 PERCENT",
    "SELECT * FROM persons USING SAMPLE 100 PERCENT (bernoulli)",
    "SELECT name FROM persons p WHERE EXISTS (SELECT 1 FROM visits v WHERE v.division_code LIKE '3302%')",
    "SELECT * FROM persons p POSITIONAL JOIN persons q",
    "FROM persons SELECT * EXCLUDE (name)",
    "SELECT * REPLACE (upper(name) AS name) FROM persons",
    "SELECT list(id_number ORDER BY id_number), string_agg(mobile, ',') FROM persons",
    "SELECT person_key FROM persons",
    "TABLE persons",
]


@pytest.mark.req("REQ-27", "on-sharing")
@pytest.mark.parametrize("sql", ORACLES)
def test_mask_oracles_and_filter_escapes_see_only_the_policy_view(sql: str, databases: Databases) -> None:
    rows = databases.enforced(sql)
    assert_no_leak(rows)
    if "PIVOT" not in sql:  # the pivot's out-of-filter column is NULL/0 on both sides but typed apart
        assert same_rows(rows, databases.expected(sql)), sql


def test_a_raw_predicate_finds_nothing_and_the_masked_one_finds_the_row(databases: Databases) -> None:
    assert databases.enforced(f"SELECT name FROM persons WHERE id_number = '{RAW_ID}'") == []
    masked = RAW_ID[:6] + "********" + RAW_ID[14:]
    assert databases.enforced(f"SELECT name FROM persons WHERE id_number = '{masked}'") == [("张**",)]


def test_cross_joins_are_capped_by_the_row_limit(databases: Databases) -> None:
    rows = databases.enforced(
        "SELECT 1 FROM persons a, persons b, persons c, persons d, persons e, persons f",
        POLICY_SETS["limit10"],
    )
    assert len(rows) == 10
