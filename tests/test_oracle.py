"""The oracle: every answer of the gateway equals the grant applied by hand to the raw files.

For every grant of the demo (built small, at the pinned clock), a battery of queries — projections,
filters, aggregates, ORDER BY … LIMIT, seeded samples, joins with what the grant may also read —
runs twice: through `run_query` as the grantee sends it (decide, rewrite, sandboxed engine, Arrow
out), and as written on a plain DuckDB connection whose tables are the raw Parquet files of each
entry's current Delta version with the grant applied by hand here: the granted fields only, the
rows of the region's known divisions (looked up in the shipped tables in Python, not through the
gateway's filter) and the grant's predicate. Only the mask expressions themselves come from the
platform's de-identification functions. The names of the columns must agree as well as the values.

Before the queries, rows with the malformed and unknown division codes that ingest keeps under
``--policy flag`` are appended to the granted entry, so the region filter is tried on them too.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlglot import exp

from pubdata.catalog.classes import WriteMode
from pubdata.clock import Clock
from pubdata.db.models import CatalogEntry, Grant, User
from pubdata.demo.build import build_demo
from pubdata.divisions import divisions, villages
from pubdata.gateway.deid import build_deid, default_deid
from pubdata.gateway.engine import SandboxedEngine
from pubdata.gateway.grants import RAW
from pubdata.gateway.query import run_query
from pubdata.gateway.roles import Principal, Role, Scope
from pubdata.store.delta import DatasetStore
from pubdata.workspace import Workspace

#: Codes ingest keeps when told to flag rather than reject: none is a known division of 嘉兴.
MALFORMED = ["3304", "33040", "3304XX000000", "33040200700", "3304020070000", "330499000000", "3304 02007000"]
#: Known divisions, inside and outside the region, appended beside them as controls.
CONTROLS = ["330402007024", "330100000000"]
#: Unconditional entries a grantee may read beside its grant (joins).
ALSO_READ = ("scjg_enterprise_register",)


@dataclass
class Oracle:
    workspace: Workspace
    principal: Principal
    application: str
    purpose: str
    engine: SandboxedEngine
    hand: duckdb.DuckDBPyConnection
    now: dt.datetime

    def gateway(self, sql: str) -> tuple[list[str], list[str]]:
        answer = run_query(
            self.workspace, self.principal, sql, self.purpose, self.application, "arrow",
            engine=self.engine, now=self.now,
        )  # fmt: skip
        table = pa.ipc.open_stream(b"".join(answer.body)).read_all()
        if "_disputed" in table.column_names:  # the platform's mark, not part of the data
            table = table.drop_columns(["_disputed"])
        return table.column_names, _rows(table.to_pylist(), table.column_names)

    def expected(self, sql: str) -> tuple[list[str], list[str]]:
        relation = self.hand.sql(sql)
        names = relation.columns
        return names, _rows([dict(zip(names, r, strict=True)) for r in relation.fetchall()], names)


def _rows(rows: list[dict[str, Any]], names: list[str]) -> list[str]:
    """Rows as sorted text: an ORDER BY … LIMIT below orders by every column it returns, so the
    multiset is the answer."""
    return sorted(repr(tuple(r[n] for n in names)) for r in rows)


def _mask(function: str | None, field: str, params: dict[str, Any]) -> str:
    column = exp.column(field, quoted=True)
    if function is None or function == RAW:
        return column.sql("duckdb")
    return build_deid(function, column, **params).sql("duckdb")


def _known(prefix: str) -> list[str]:
    """The region's divisions, from the shipped tables (an independent reading of them)."""
    codes = [d.code for d in divisions() if d.code[: len(prefix)] == prefix]
    return codes + [c for c in villages().codes() if c[: len(prefix)] == prefix]


def _by_hand(
    con: duckdb.DuckDBPyConnection, entry: CatalogEntry, files: list[str], grant: Grant | None
) -> None:
    """The entry as the grantee may see it, as a table of the entry's name, built here."""
    choices = grant.deid if grant is not None else {}
    shown = [f for f in entry.fields if grant is None or f.name in grant.fields]
    items = []
    for f in shown:
        chosen = choices.get(f.name)
        function = chosen["function"] if chosen else default_deid(f.level, f.pii_kind)
        items.append(f'{_mask(function, f.name, dict(chosen["params"]) if chosen else {})} AS "{f.name}"')
    where = []
    if grant is not None and grant.region_prefix:
        con.execute(
            "CREATE OR REPLACE TABLE region AS SELECT unnest($1::VARCHAR[]) AS code",
            [_known(grant.region_prefix)],
        )
        where.append(f'"{grant.region_field}" IN (SELECT code FROM region)')
    if grant is not None and grant.row_predicate:
        where.append(f"({grant.row_predicate})")
    # A view, not a table: a seeded sample then draws from the same stream of rows as the engine's.
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    con.execute(
        f"CREATE VIEW {entry.code} AS SELECT {', '.join(items)} FROM read_parquet([{listed}])"
        + (f" WHERE {' AND '.join(where)}" if where else "")
    )


def _append_malformed(workspace: Workspace, code: str) -> None:
    store = DatasetStore(workspace.data_dir, workspace.sessions)
    with workspace.sessions() as session:
        entry = session.scalars(select(CatalogEntry).where(CatalogEntry.code == code)).one()
        files = store.file_uris(entry)
        with duckdb.connect() as con:
            model = con.sql(
                "SELECT * FROM read_parquet($files) LIMIT 1", params={"files": files}
            ).to_arrow_table()
        odd = MALFORMED + CONTROLS
        rows = pa.concat_tables([model] * len(odd)).to_pydict()
        rows["division_code"] = odd
        rows["id_number"] = [f"33040219900101{i:03d}X"[:18] for i in range(len(odd))]
        table = pa.Table.from_pydict(rows, schema=model.schema)
        store.write(entry, table.to_batches(), WriteMode.APPEND, operator="oracle")


@pytest.fixture(scope="module")
def oracles(
    tmp_path_factory: pytest.TempPathFactory, pinned_clock: Clock, pinned_now: dt.datetime
) -> Iterator[list[Oracle]]:
    home = tmp_path_factory.mktemp("oracle") / "home"
    build_demo(home, scale=0.02, clock=pinned_clock)
    workspace = Workspace.open(home, clock=pinned_clock)
    with workspace.sessions() as session:
        grants = [(g.id, g.entry.code) for g in session.scalars(select(Grant))]
    assert grants, "the demo has grants to check"
    for _, code in grants:
        _append_malformed(workspace, code)
    store = DatasetStore(workspace.data_dir, workspace.sessions)
    found = []
    with SandboxedEngine.for_workspace(workspace, threads=1) as engine, workspace.sessions() as session:
        for grant_id, _ in grants:
            grant = session.get(Grant, grant_id)
            assert grant is not None
            user = _grantee(session, grant)
            principal = Principal(user, user.organisation, user.roles, frozenset(Scope))
            hand = duckdb.connect()
            hand.execute("SET threads = 1")
            for entry in [
                grant.entry,
                *(session.scalars(select(CatalogEntry).where(CatalogEntry.code.in_(ALSO_READ)))),
            ]:
                _by_hand(hand, entry, store.file_uris(entry), grant if entry.id == grant.entry_id else None)
            found.append(
                Oracle(workspace, principal, grant.application.code, grant.purpose, engine, hand, pinned_now)
            )
        yield found
    for oracle in found:
        oracle.hand.close()


def _grantee(session: Session, grant: Grant) -> User:
    """A consumer of the grant's organisation (the demo gives each one a login)."""
    users = session.scalars(select(User).where(User.organisation_id == grant.organisation_id, User.active))
    return next(u for u in users if Role.CONSUMER in u.roles)


def battery(entry: str, fields: list[str]) -> list[str]:
    """Queries over `entry` whose visible fields are `fields` (the demo grant's shape)."""
    cols = ", ".join(fields)
    return [
        f"SELECT * FROM {entry}",
        *(f"SELECT {f} FROM {entry}" for f in fields),
        f"SELECT {cols} FROM {entry} WHERE status = (SELECT min(status) FROM {entry})",
        f"SELECT name, division_code FROM {entry} WHERE name LIKE '王%' OR division_code LIKE '330402%'",
        f"SELECT id_number FROM {entry} WHERE enrolled_on >= DATE '2015-01-01' AND insurance_type <> ''",
        f"SELECT count(*) AS n, count(DISTINCT employer_uscc) AS employers FROM {entry}",
        f"SELECT count(*) FROM {entry}",
        f"SELECT division_code, count(*) AS n FROM {entry} GROUP BY division_code",
        f"SELECT left(division_code, 6) AS c, min(enrolled_on), max(enrolled_on) FROM {entry} GROUP BY 1",
        f"SELECT insurance_type, string_agg(status, ',' ORDER BY status) FROM {entry} GROUP BY 1",
        f"SELECT insurance_type, list(DISTINCT status ORDER BY status) FROM {entry} GROUP BY ALL",
        f"SELECT status, count(*) FILTER (WHERE name LIKE '张%') FROM {entry} GROUP BY 1 HAVING count(*) > 1",
        f"SELECT {cols} FROM {entry} ORDER BY {cols} LIMIT 25",
        f"SELECT {cols} FROM {entry} ORDER BY {cols} DESC LIMIT 10 OFFSET 5",
        f"SELECT id_number, name, enrolled_on FROM {entry} ORDER BY enrolled_on, id_number, name LIMIT 7",
        f"SELECT DISTINCT insurance_type, status FROM {entry}",
        f"SELECT status, count(*) OVER (PARTITION BY status) AS n FROM {entry}",
        f"SELECT count(*) AS n FROM {entry} TABLESAMPLE RESERVOIR(100 ROWS) REPEATABLE (42)",
        f"SELECT count(*) AS n FROM {entry} TABLESAMPLE RESERVOIR(100000 ROWS) REPEATABLE (42)",
        f"SELECT count(*) > 0 AS some FROM {entry} USING SAMPLE 50 PERCENT (bernoulli, 3)",
        f"SELECT count(*) AS n FROM {entry} a JOIN {entry} b ON a.employer_uscc = b.employer_uscc",
        f"SELECT a.id_number, b.name FROM {entry} a JOIN scjg_enterprise_register b ON employer_uscc = uscc",
        f"SELECT b.industry, count(*) FROM {entry} a LEFT JOIN scjg_enterprise_register b "
        "ON a.employer_uscc = b.uscc GROUP BY 1",
        f"WITH t AS (SELECT division_code AS d FROM {entry}) SELECT d, count(*) FROM t GROUP BY d",
        f"SELECT status FROM {entry} UNION SELECT insurance_type FROM {entry}",
    ]


def sampled(entry: str, fields: list[str]) -> dict[str, str]:
    """Row samples → the query of all the rows they are drawn from. Which rows a seeded reservoir
    keeps depends on how the engine's plan feeds them, so the sample must hold as many rows as asked
    (or all there are), each one of the granted rows."""
    cols = ", ".join(fields)
    return {
        f"SELECT {cols} FROM {entry} TABLESAMPLE RESERVOIR(20 ROWS) REPEATABLE (7)": (
            f"SELECT {cols} FROM {entry}"
        ),
        f"SELECT a.{fields[0]} FROM {entry} AS a TABLESAMPLE RESERVOIR(100000 ROWS) REPEATABLE (7)": (
            f"SELECT {fields[0]} FROM {entry}"
        ),
    }


def test_every_grant_answers_as_the_grant_applied_by_hand(oracles: list[Oracle]) -> None:
    checked = 0
    for oracle in oracles:
        entries = {r[0] for r in oracle.hand.sql("SHOW TABLES").fetchall()} - {"region"}
        granted = next(e for e in sorted(entries) if e not in ALSO_READ)
        fields = oracle.hand.sql(f"SELECT * FROM {granted} LIMIT 0").columns
        disagreements = []
        for sql in battery(granted, fields):
            if not _fits(sql, fields):
                continue
            got, want = oracle.gateway(sql), oracle.expected(sql)
            if got != want:
                disagreements.append((sql, got[0], want[0], len(got[1]), len(want[1])))
            checked += 1
        for sql, whole in sampled(granted, fields).items():
            (names, rows), (all_names, population) = oracle.gateway(sql), oracle.expected(whole)
            wanted = min(int(re.findall(r"RESERVOIR\((\d+) ROWS", sql)[0]), len(population))
            if names != all_names or len(rows) != wanted or not set(rows) <= set(population):
                disagreements.append((sql, names, all_names, len(rows), wanted))
            checked += 1
        assert not disagreements, disagreements
    assert checked >= 30


def _fits(sql: str, fields: list[str]) -> bool:
    """Whether every field the battery names is one the grant shows (other grants show others)."""
    named = set(re.findall(r"\b(status|insurance_type|employer_uscc|enrolled_on|name|division_code)\b", sql))
    return named <= set(fields)


def test_malformed_codes_are_in_the_raw_files_but_never_served(oracles: list[Oracle]) -> None:
    oracle = oracles[0]
    _, served = oracle.gateway("SELECT DISTINCT division_code FROM hrss_social_insurance")
    assert served and not any(repr((code,)) in served for code in [*MALFORMED, CONTROLS[1]])
    assert repr((CONTROLS[0],)) in served
