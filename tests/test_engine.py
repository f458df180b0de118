"""The sandboxed engine as its callers use it: granted versions, isolation, row caps, streaming, errors."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlglot import exp

from pubdata.catalog.classes import FieldType, OrgType, WriteMode
from pubdata.db.models import CatalogEntry, CatalogField, Organisation, Tenant
from pubdata.gateway.deid import build_deid, pseudonym_variables
from pubdata.gateway.engine import (
    QueryError,
    QueryStream,
    SandboxedEngine,
    open_locked_connection,
)
from pubdata.gateway.engine_failures import FailureKind, QueryFailed
from pubdata.gateway.policy_types import QueryPolicy, TablePolicy
from pubdata.gateway.rewrite import rewrite
from pubdata.store.delta import ROW_FLAGS, DatasetStore
from pubdata.workspace import Workspace


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Plain Parquet files: ``a`` holds 0..9, ``b`` holds 100..104."""
    root = tmp_path_factory.mktemp("engine") / "data"
    root.mkdir()
    pq.write_table(pa.table({"n": list(range(10)), "tag": ["a"] * 10}), root / "a.parquet")
    pq.write_table(pa.table({"n": list(range(100, 105)), "tag": ["b"] * 5}), root / "b.parquet")
    return root


@pytest.fixture(scope="module")
def engine(data_dir: Path) -> Iterator[SandboxedEngine]:
    with SandboxedEngine([data_dir], data_dir.parent / "tmp", time_budget_s=10) as engine:
        yield engine


def rows(stream: QueryStream) -> list[dict[str, object]]:
    with stream:
        result: list[dict[str, object]] = stream.read_all().to_pylist()
    return result


def make_entry(workspace: Workspace) -> CatalogEntry:
    with workspace.sessions() as s, s.begin():
        tenant = s.scalars(select(Tenant).where(Tenant.division_code == "330000000000")).one()
        org = Organisation(
            name="民政厅",
            org_type=OrgType.STATE_ORGAN,
            uscc="000000000000000001",
            division_code="330000000000",
            tenant=tenant,
        )
        fields = [
            CatalogField(position=0, name="division_code", data_type=FieldType.STRING),
            CatalogField(position=1, name="visits", data_type=FieldType.INTEGER),
        ]
        entry = CatalogEntry(code="residents", name="居民", provider=org, tenant_id=tenant.id, fields=fields)
        s.add(entry)
    return entry


def residents(codes: list[str]) -> pa.RecordBatch:
    return pa.record_batch(
        {
            "division_code": codes,
            "visits": pa.array(range(len(codes)), pa.int64()),
            ROW_FLAGS: pa.array([None] * len(codes), pa.string()),
        }
    )


def test_a_request_reads_exactly_the_granted_version_of_a_store_entry(workspace: Workspace) -> None:
    entry = make_entry(workspace)
    store = DatasetStore(workspace.data_dir, workspace.sessions)
    first = store.write(entry, [residents(["330102", "330106"])], WriteMode.APPEND, operator="t")
    store.write(entry, [residents(["330502"])], WriteMode.APPEND, operator="t")
    with SandboxedEngine.for_workspace(workspace) as engine:
        sql = "SELECT division_code FROM __base_residents ORDER BY 1"
        old = engine.run(sql, {"__base_residents": store.file_uris(entry, first.version)})
        assert [r["division_code"] for r in rows(old)] == ["330102", "330106"]
        new = engine.run(sql, {"__base_residents": store.file_uris(entry)})
        assert [r["division_code"] for r in rows(new)] == ["330102", "330106", "330502"]


def test_schema_is_known_before_the_first_batch(engine: SandboxedEngine, data_dir: Path) -> None:
    with engine.run("SELECT n, tag FROM t", {"t": [str(data_dir / "a.parquet")]}) as stream:
        assert stream.schema.names == ["n", "tag"]
        assert stream.schema.field("n").type == pa.int64()


def test_relation_names_are_case_insensitive_and_quoted(engine: SandboxedEngine, data_dir: Path) -> None:
    files = {'__base_odd "name"': [str(data_dir / "a.parquet")]}
    got = rows(engine.run('SELECT count(*) AS c FROM "__BASE_ODD ""NAME"""', files))
    assert got == [{"c": 10}]


def test_a_relation_without_files_is_an_error(engine: SandboxedEngine) -> None:
    with pytest.raises(QueryError, match="at least one Parquet file"):
        engine.run("SELECT * FROM __base_empty", {"__base_empty": []})


def test_concurrent_requests_see_only_their_own_views_and_variables(
    engine: SandboxedEngine, data_dir: Path
) -> None:
    """Both requests use the same relation and variable names at the same time, over other files."""
    both_open = threading.Barrier(2)
    seen: dict[str, list[dict[str, object]]] = {}
    failures: list[BaseException] = []

    def request(tag: str) -> None:
        try:
            sql = "SELECT tag, getvariable('__pk_slot') AS key, count(*) AS c FROM __base_x GROUP BY ALL"
            tables = {"__base_x": [str(data_dir / f"{tag}.parquet")]}
            with engine.run(sql, tables, {"__pk_slot": f"key-{tag}"}) as stream:
                both_open.wait(timeout=10)  # both cursors hold their views and variables now
                seen[tag] = stream.read_all().to_pylist()
        except BaseException as exc:  # reported in the main thread
            failures.append(exc)

    threads = [threading.Thread(target=request, args=(tag,)) for tag in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert seen == {
        "a": [{"tag": "a", "key": "key-a", "c": 10}],
        "b": [{"tag": "b", "key": "key-b", "c": 5}],
    }


def test_variables_do_not_outlive_their_request(engine: SandboxedEngine) -> None:
    assert rows(engine.run("SELECT getvariable('__pk_k') AS k", {}, {"__pk_k": b"\x00\xffkey"})) == [
        {"k": b"\x00\xffkey"}
    ]
    assert rows(engine.run("SELECT getvariable('__pk_k') AS k", {})) == [{"k": None}]


def test_cursors_of_the_locked_connection_keep_temp_views_apart(data_dir: Path) -> None:
    con = open_locked_connection([data_dir], data_dir.parent / "tmp")
    first, second = con.cursor(), con.cursor()
    first.execute(f"CREATE TEMP VIEW v AS SELECT * FROM read_parquet('{data_dir / 'a.parquet'}')")
    assert first.sql("SELECT count(*) FROM v").fetchall() == [(10,)]
    with pytest.raises(duckdb.CatalogException):
        second.sql("SELECT count(*) FROM v").fetchall()
    con.close()


@settings(max_examples=40, deadline=None)
@given(
    total=st.integers(0, 300),
    cap=st.integers(0, 320),
    batch=st.integers(1, 4096),
)
def test_row_cap_truncates_in_order(engine: SandboxedEngine, total: int, cap: int, batch: int) -> None:
    sql = f"SELECT i FROM range({total}) t(i) ORDER BY i DESC"
    with engine.run(sql, max_rows=cap, batch_rows=batch) as stream:
        got = [i for b in stream for i in b.column("i").to_pylist()]
    assert got == list(range(total - 1, -1, -1))[:cap]
    assert stream.rows == len(got)
    assert stream.truncated == (total > cap)


def test_no_cap_means_every_row_and_not_truncated(engine: SandboxedEngine) -> None:
    with engine.run("SELECT * FROM range(5000)", batch_rows=1000) as stream:
        sizes = [b.num_rows for b in stream]
    assert sum(sizes) == 5000 and max(sizes) <= 2048 and not stream.truncated


def test_streaming_memory_follows_the_batch_not_the_result(engine: SandboxedEngine) -> None:
    """2 M rows of 200-byte strings (~400 MB materialised) stream within a modest RSS growth."""
    process = psutil.Process()
    before = process.memory_info().rss
    peak = before
    sql = "SELECT i, repeat('x', 200) || i::VARCHAR AS payload FROM range(2000000) t(i)"
    with engine.run(sql, batch_rows=8192) as stream:
        count = 0
        for batch in stream:
            count += batch.num_rows
            if count % 65536 < 8192:
                peak = max(peak, process.memory_info().rss)
    assert count == 2_000_000
    assert peak - before < 150 * 2**20, f"RSS grew by {(peak - before) / 2**20:.0f} MiB"


def test_reader_feeds_arrow_writers(engine: SandboxedEngine) -> None:
    with engine.run("SELECT i FROM range(10) t(i)", batch_rows=3) as stream:
        sink = pa.BufferOutputStream()
        reader = stream.reader()
        with pa.ipc.new_stream(sink, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
    assert pa.ipc.open_stream(sink.getvalue()).read_all().column("i").to_pylist() == list(range(10))


def test_errors_never_quote_a_secret(engine: SandboxedEngine) -> None:
    for secret in ("pk-7f3a9c1e-secret", b"\x01\xfe pk-bytes"):
        with pytest.raises(QueryError) as caught:
            engine.run("SELECT CAST(getvariable('__pk_k')::VARCHAR AS INTEGER)", {}, {"__pk_k": secret})
        message = str(caught.value)
        assert "pk-" not in message and isinstance(caught.value, QueryFailed)
        assert caught.value.kind == FailureKind.CONVERSION
        assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_errors_while_streaming_are_query_errors_and_scrubbed(engine: SandboxedEngine) -> None:
    sql = (
        "SELECT CASE WHEN i < 50000 THEN i::VARCHAR "
        "ELSE error('bad row ' || getvariable('__pk_k')) END AS v FROM range(100000) t(i)"
    )
    stream = engine.run(sql, {}, {"__pk_k": "pk-streamed-secret"}, batch_rows=2048)
    with pytest.raises(QueryError) as caught:
        for _ in stream:
            pass
    assert "pk-streamed-secret" not in str(caught.value) and "bad row" not in str(caught.value)


def test_errors_name_no_server_directory(engine: SandboxedEngine, data_dir: Path) -> None:
    broken = data_dir / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(QueryError) as caught:
        rows(engine.run("SELECT * FROM t", {"t": [str(broken)]}))
    assert str(data_dir) not in str(caught.value) and "broken" not in str(caught.value)


def test_large_sorts_spill_to_the_temp_directory(tmp_path: Path) -> None:
    sql = "SELECT i, md5(i::VARCHAR) AS h FROM range(1500000) t(i) ORDER BY h"
    roomy = SandboxedEngine([tmp_path], tmp_path / "spill", memory_limit="48MB", threads=1)
    with roomy, roomy.run(sql, batch_rows=100_000) as stream:
        assert sum(b.num_rows for b in stream) == 1_500_000
    cramped = SandboxedEngine(
        [tmp_path], tmp_path / "spill2", memory_limit="48MB", max_temp_size="1MB", threads=1
    )
    with cramped:
        with pytest.raises(QueryError):
            rows(cramped.run(sql))
        assert rows(cramped.run("SELECT 1 AS one")) == [{"one": 1}]


def test_an_enforced_query_runs_with_its_pseudonym_keys_as_variables(tmp_path: Path) -> None:
    """The policy rewrite's output runs as is; keys reach it only as request variables."""
    pq.write_table(
        pa.table(
            {
                "id_number": ["33010219800101123X", "330502198001011234"],
                "division_code": ["330102", "330502"],
            }
        ),
        tmp_path / "people.parquet",
    )
    raw = exp.column("id_number", table="__base_people")
    people = TablePolicy.build(
        "people",
        {
            "id_number": build_deid("mask_id_number", raw),
            "person_key": build_deid("pseudonym", raw, slot="g1"),
        },
        row_filter=exp.column("division_code", table="__base_people").like(exp.Literal.string("3301%")),
    )
    key = b"a grant key of 32 bytes, secret!"
    enforced = rewrite("SELECT * FROM people", QueryPolicy.of(people)).sql
    assert "secret" not in enforced
    with SandboxedEngine([tmp_path], tmp_path / "tmp") as engine:
        files = {people.internal_name: [str(tmp_path / "people.parquet")]}
        got = rows(engine.run(enforced, files, pseudonym_variables("g1", key)))
    token = hmac.new(key, b"33010219800101123X", hashlib.sha256).hexdigest()[:20]
    assert got == [{"id_number": "330102********123X", "person_key": token}]
