"""P1: an enforced query through the gateway vs the same query by hand on raw DuckDB.

Three sides answer each query over the same Parquet files (the entry's current Delta version):

- **gateway**: the path of a request — `referenced_entries` → `access.decide` (grant, region filter,
  three default masks) → `rewrite` → the version's file list → `SandboxedEngine.run` (locked
  connection, cursor, guard, temp view, time budget) → all batches read into one Arrow table;
- **engine**: only the last step, the already-rewritten SQL on the sandboxed engine, to show how
  much of the difference is the per-request fixed cost and how much is masking and filtering;
- **policy**: the gateway's path without the hidden subject columns, i.e. what enforcement costs
  before the keyed hash of every served person that indexes who accessed whom (REQ-41);
- **raw DuckDB**: the query as written, neither masked nor filtered, on a plain connection with the
  same thread count and memory limit, over ``read_parquet([...])`` of the same files, read with the
  same batch size.

The sides alternate (and rotate which goes first) within one run, after one untimed warm-up each
whose answers are compared: the filter passes every row (see `bench.support`), so all sides must
return the same row count and the same amounts. The ratio is the median over rounds of gateway /
raw within a round. Goal: gateway / raw ≤ 1.10 at 10 M rows. Decide and rewrite latencies are
measured alone over many iterations (p50, p99).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from bench.support import APPLICATION, ENTRY, PURPOSE, BenchWorld, bench_world
from pubdata import audit
from pubdata.catalog.service import get_entry
from pubdata.db.models import utcnow
from pubdata.gateway.access import AccessDecision, decide
from pubdata.gateway.engine import SandboxedEngine
from pubdata.gateway.identity import authenticate_token
from pubdata.gateway.referenced import referenced_entries
from pubdata.gateway.rewrite import rewrite
from pubdata.gateway.rewrite.attach_subjects import SUBJECT_PREFIX
from pubdata.gateway.roles import Principal
from pubdata.gateway.served_subjects import with_subjects

THREADS = 2
MEMORY_LIMIT = "1GB"
BATCH_ROWS = 65_536
DECIDE_ITERATIONS = 200
REWRITE_ITERATIONS = 300

#: name → SQL over the entry; each reads the three masked columns or filters/aggregates beside them.
QUERIES: dict[str, str] = {
    "top 1 000 by amount": (
        f"SELECT id_number, name, mobile, division_code, amount FROM {ENTRY} "
        "WHERE amount > 9000 ORDER BY amount DESC LIMIT 1000"
    ),
    "sum by county": (
        f"SELECT left(division_code, 6) AS county, count(*) AS persons, sum(amount) AS total "
        f"FROM {ENTRY} WHERE amount > 1000 GROUP BY county ORDER BY county"
    ),
    "rows with amount > 9 900": (
        f"SELECT id_number, name, mobile, division_code, amount FROM {ENTRY} WHERE amount > 9900"
    ),
}


class Gateway:
    """The consumer's requests through decide → rewrite → sandboxed engine, as the API runs them."""

    def __init__(self, world: BenchWorld) -> None:
        self.world = world
        with world.workspace.sessions() as session, session.begin():
            self.principal: Principal = authenticate_token(session, world.token)
        org = self.principal.organisation
        assert org is not None
        self.settings = world.workspace.settings.for_tenant(org.division_code)
        self.engine = SandboxedEngine.for_workspace(
            world.workspace, threads=THREADS, memory_limit=MEMORY_LIMIT, time_budget_s=600
        )

    def decide(self, sql: str) -> AccessDecision:
        codes = referenced_entries(sql)
        with self.world.workspace.sessions() as session:
            return decide(
                session,
                self.principal,
                APPLICATION,
                PURPOSE,
                codes,
                utcnow(),
                self.settings,
                self.world.home,
                row_limit=None,
            )

    def prepare(self, sql: str, subjects: bool = True) -> tuple[str, dict[str, list[str]], dict[str, bytes]]:
        """The enforced SQL, its relations (internal name → files) and the request's variables —
        with the hidden subject columns the API adds so that who-accessed finds every served record
        (without them when `subjects` is false: the price of enforcement alone)."""
        decision = self.decide(sql)
        policy = decision.policy
        if subjects:
            with self.world.workspace.sessions() as session:
                entries = {code: get_entry(session, code) for code in decision.policy.tables}
                policy = with_subjects(decision.policy, entries)
        result = rewrite(sql, policy)
        files = self.world.file_uris()
        tables = {decision.policy.tables[code].internal_name: files for code in result.tables}
        variables = dict(decision.variables)
        if result.subject_columns:
            variables.update(audit.subject_hash_variables(self.world.home))
        return result.sql, tables, variables

    def run(self, sql: str, subjects: bool = True) -> pa.Table:
        return self.run_engine(*self.prepare(sql, subjects))

    def run_engine(self, sql: str, tables: dict[str, list[str]], variables: dict[str, bytes]) -> pa.Table:
        with self.engine.run(sql, tables, variables, batch_rows=BATCH_ROWS) as stream:
            table = stream.read_all()
        hidden = [name for name in table.column_names if name.startswith(SUBJECT_PREFIX)]
        for name in hidden:  # what the subject index gathers of each answer
            pc.unique(table.column(name))
        return table.drop_columns(hidden)

    def close(self) -> None:
        self.engine.close()


class RawDuckDB:
    """The hand-written baseline: the entry's name is a view over ``read_parquet`` of the files."""

    def __init__(self, files: list[str]) -> None:
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET threads = $1", [THREADS])
        self.con.execute("SET memory_limit = $1", [MEMORY_LIMIT])
        self.con.read_parquet(files).create_view(ENTRY)

    def run(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_reader(BATCH_ROWS).read_all()

    def close(self) -> None:
        self.con.close()


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100)
    return {"p50_ms": round(cuts[49] * 1000, 3), "p99_ms": round(cuts[98] * 1000, 3)}


def _check_same(name: str, ours: pa.Table, raw: pa.Table) -> None:
    """The filter passes every row, so masking is the only difference: counts and amounts agree."""
    if ours.num_rows != raw.num_rows:
        raise RuntimeError(f"{name}: gateway answered {ours.num_rows} rows, raw DuckDB {raw.num_rows}")
    column = "total" if "total" in raw.column_names else "amount"
    if sorted(ours.column(column).to_pylist()) != sorted(raw.column(column).to_pylist()):
        raise RuntimeError(f"{name}: the {column} values differ between the gateway and raw DuckDB")
    if (
        "id_number" in raw.column_names
        and ours.num_rows
        and ours.column("id_number").equals(raw.column("id_number"))
    ):
        raise RuntimeError(f"{name}: the gateway served identity numbers unmasked")


def measure_case(gateway: Gateway, raw: RawDuckDB, name: str, sql: str, rounds: int) -> dict[str, Any]:
    enforced = gateway.prepare(sql)
    ours_rows, raw_rows = gateway.run(sql), raw.run(sql)  # warm-up, and the answers compared
    _check_same(name, ours_rows, raw_rows)
    sides: dict[str, Callable[[], object]] = {
        "gateway": lambda: gateway.run(sql),
        "engine": lambda: gateway.run_engine(*enforced),
        "policy": lambda: gateway.run(sql, subjects=False),
        "raw": lambda: raw.run(sql),
    }
    times: dict[str, list[float]] = {side: [] for side in sides}
    order = list(sides)
    for _ in range(rounds):
        for side in order:
            times[side].append(_timed(sides[side]))
        order = order[1:] + order[:1]
    medians = {side: statistics.median(t) for side, t in times.items()}
    # Other work on a shared machine comes and goes in phases: a ratio of two runs made one after
    # the other in the same round is steadier than the ratio of two medians taken over all rounds.
    paired = {
        side: statistics.median(ours / raw for ours, raw in zip(times[side], times["raw"], strict=True))
        for side in ("gateway", "engine", "policy")
    }
    return {
        "query": name,
        "sql": sql,
        "rows_returned": raw_rows.num_rows,
        "gateway_s": medians["gateway"],
        "engine_s": medians["engine"],
        "raw_s": medians["raw"],
        "ratio": round(paired["gateway"], 3),
        "engine_ratio": round(paired["engine"], 3),
        "policy_s": medians["policy"],
        "policy_ratio": round(paired["policy"], 3),
        "ratio_of_medians": round(medians["gateway"] / medians["raw"], 3),
        "samples_s": times,
    }


def measure_latencies(gateway: Gateway) -> dict[str, Any]:
    """Decide alone (database reads, policy compilation) and rewrite alone (sqlglot), in a loop."""
    sql = next(iter(QUERIES.values()))
    decide_s = [_timed(lambda: gateway.decide(sql)) for _ in range(DECIDE_ITERATIONS)]
    policy = gateway.decide(sql).policy
    rewrites: dict[str, dict[str, float]] = {}
    every: list[float] = []
    for name, text in QUERIES.items():
        samples = [_timed(partial(rewrite, text, policy)) for _ in range(REWRITE_ITERATIONS)]
        rewrites[name] = _percentiles(samples)
        every += samples
    return {
        "decide": _percentiles(decide_s),
        "rewrite": _percentiles(every),
        "rewrite_by_query": rewrites,
        "iterations": {"decide": DECIDE_ITERATIONS, "rewrite": REWRITE_ITERATIONS * len(QUERIES)},
    }


def run(workdir: Path, scale: float, repeat: int) -> dict[str, Any]:
    rows = max(10_000, int(10_000_000 * scale))
    rounds = max(7, repeat)
    print(f"P1: preparing {rows:,} rows …", flush=True)
    world = bench_world(workdir / f"home-{rows}", rows)
    gateway, raw = Gateway(world), RawDuckDB(world.file_uris())
    try:
        cases = []
        for name, sql in QUERIES.items():
            print(f"P1: {name} …", flush=True)
            cases.append(measure_case(gateway, raw, name, sql, rounds))
        latencies = measure_latencies(gateway)
    finally:
        gateway.close()
        raw.close()
    _print(rows, cases, latencies)
    return {
        "benchmark": "P1 enforced query",
        "rows": rows,
        "files": len(world.file_uris()),
        "rounds": rounds,
        "threads": THREADS,
        "memory_limit": MEMORY_LIMIT,
        "cases": cases,
        "latencies": latencies,
        "goals": {"ratio": "<= 1.10"},
    }


def _print(rows: int, cases: list[dict[str, Any]], latencies: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"P1 enforced query (filter + 3 masks) vs raw DuckDB, {rows:,} rows, medians")
    for column in (
        "query",
        "rows out",
        "gateway s",
        "engine s",
        "raw s",
        "ratio (goal ≤ 1.10)",
        "engine ratio",
        "policy ratio",
    ):
        table.add_column(column, justify="left" if column == "query" else "right")
    for c in cases:
        table.add_row(
            c["query"],
            f"{c['rows_returned']:,}",
            f"{c['gateway_s']:.3f}",
            f"{c['engine_s']:.3f}",
            f"{c['raw_s']:.3f}",
            f"{c['ratio']:.2f}",
            f"{c['engine_ratio']:.2f}",
            f"{c['policy_ratio']:.2f}",
        )
    console = Console(width=120)
    console.print(table)
    decide_ms, rewrite_ms = latencies["decide"], latencies["rewrite"]
    console.print(
        f"decide p50 {decide_ms['p50_ms']:.2f} ms, p99 {decide_ms['p99_ms']:.2f} ms; "
        f"rewrite p50 {rewrite_ms['p50_ms']:.2f} ms, p99 {rewrite_ms['p99_ms']:.2f} ms"
    )
