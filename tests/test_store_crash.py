"""kill -9 during a write: the previous version stays readable and unchanged, nothing half is listed.

A child process (tests/store_crash_writer.py) streams 800 000 rows into an entry and is killed
before, during or right after the Delta commit, by itself at a chosen point or by this test at a
random moment. Content is compared by an order-independent fingerprint (row count and the sum of
row hashes, computed by DuckDB) so that file layout does not matter.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable
from sqlalchemy import select

from pubdata.catalog.classes import FieldType, OrgType, WriteMode
from pubdata.db.models import AuditEvent, CatalogEntry, CatalogField, Organisation, Tenant
from pubdata.store.delta import ROW_FLAGS, DatasetStore
from pubdata.workspace import Workspace

WRITER = Path(__file__).with_name("store_crash_writer.py")
CHILD_ROWS = 80 * 10_000


def fingerprint(table: pa.Table) -> tuple[int, int]:
    with duckdb.connect() as con:
        con.register("t", table)
        found = con.execute(
            "SELECT count(*), coalesce(sum(hash(key, value, __row_flags)), 0) FROM t"
        ).fetchone()
    assert found is not None
    return int(found[0]), int(found[1])


def batch(keys: list[str]) -> pa.RecordBatch:
    return pa.record_batch(
        {
            "key": keys,
            "value": pa.array(range(len(keys)), pa.int64()),
            ROW_FLAGS: pa.array(["flagged"] * len(keys), pa.string()),
        }
    )


def make_entry(workspace: Workspace) -> CatalogEntry:
    with workspace.sessions() as s, s.begin():
        tenant = s.scalars(select(Tenant).where(Tenant.division_code == "330000000000")).one()
        org = Organisation(
            name="统计局",
            org_type=OrgType.STATE_ORGAN,
            uscc="1" * 18,
            division_code="330000000000",
            tenant=tenant,
        )
        entry = CatalogEntry(
            code="readings",
            name="读数",
            provider=org,
            tenant_id=tenant.id,
            key_fields=["key"],
            fields=[
                CatalogField(position=0, name="key", data_type=FieldType.STRING),
                CatalogField(position=1, name="value", data_type=FieldType.INTEGER),
            ],
        )
        s.add(entry)
    return entry


def listed(store: DatasetStore, entry: CatalogEntry) -> list[int]:
    with store.sessions() as s:
        return [v.version for v in store.versions(s, entry)]


def run_writer(
    workspace: Workspace, mode: WriteMode, tag: str, scenario: str, kill_after: float | None
) -> int:
    """Run the child; kill it `kill_after` seconds into its stream. Its return code."""
    child = subprocess.Popen(
        [sys.executable, str(WRITER), str(workspace.home), "readings", mode.value, tag, scenario],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    if kill_after is not None:
        assert child.stdout.readline().strip() == "streaming"
        time.sleep(kill_after)
        child.kill()
    child.wait(timeout=60)
    return child.returncode


#: Seconds the child spends streaming and committing (measured: append 0.26 s, upsert 0.94 s).
STREAM_SECONDS = {WriteMode.APPEND: 0.35, WriteMode.UPSERT: 1.0}
SEEDS = range(8)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_a_killed_write_leaves_the_previous_version_intact(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    workspace = Workspace.init(tmp_path / "home")
    store = DatasetStore(workspace.data_dir, workspace.sessions)
    entry = make_entry(workspace)
    store.write(entry, iter([batch([f"base-{i}" for i in range(500)])]), WriteMode.APPEND, operator="t")
    store.write(entry, iter([batch([f"base-{i}" for i in range(250, 750)])]), WriteMode.UPSERT, operator="t")
    before_versions, before = listed(store, entry), fingerprint(store.read(entry))
    before_files = store.file_uris(entry)
    delta_path = str(store.table_path(entry))
    delta_before = DeltaTable(delta_path).version()

    kind = ("in_stream", "after_commit", "timer", "timer")[seed % 4]
    mode = rng.choice([WriteMode.APPEND, WriteMode.UPSERT])
    scenario = {"in_stream": f"in_stream:{rng.randrange(80)}", "after_commit": "after_commit"}.get(
        kind, "none"
    )
    code = run_writer(
        workspace,
        mode,
        f"s{seed}",
        scenario,
        rng.uniform(0.0, STREAM_SECONDS[mode]) if kind == "timer" else None,
    )

    after_versions = listed(store, entry)
    if kind != "timer":
        assert code == -9
    if kind == "in_stream":
        assert DeltaTable(delta_path).version() == delta_before  # killed before any commit
    if kind == "after_commit":
        assert DeltaTable(delta_path).version() == delta_before + 1  # committed, never indexed
    if after_versions == before_versions:
        assert fingerprint(store.read(entry)) == before
        assert store.file_uris(entry) == before_files
    else:  # a timer kill that came after the index: the whole version, never part of it
        assert kind == "timer" and after_versions[:-1] == before_versions
        assert store.row_count(entry) == before[0] + CHILD_ROWS
    assert fingerprint(store.read(entry, before_versions[-1])) == before

    extra = batch([f"after-{seed}-{i}" for i in range(10)])
    previous = store.read(entry)
    nxt = store.write(entry, iter([extra]), WriteMode.APPEND, operator="t")
    assert listed(store, entry) == [*after_versions, nxt.version]
    assert fingerprint(store.read(entry)) == fingerprint(
        pa.concat_tables([previous, pa.Table.from_batches([extra])])
    )
    with workspace.sessions() as s:
        rollbacks = s.scalars(select(AuditEvent).where(AuditEvent.action == "store.rollback")).all()
    if kind == "after_commit":
        assert len(rollbacks) == 1 and rollbacks[0].detail["rolled_back"][0]["operator"] == "crash-writer"
