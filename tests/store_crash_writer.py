"""A writer process for tests/test_store_crash.py: one large streamed write that may be killed.

Usage: store_crash_writer.py HOME ENTRY_CODE MODE TAG SCENARIO

SCENARIO is ``none``, ``in_stream:<batch>`` (SIGKILL itself while delta-rs pulls that batch) or
``after_commit`` (SIGKILL itself in the summary callback: after the Delta commit, before the index).
The parent kills the process at random moments on its own for the remaining cases.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from pubdata.catalog.classes import WriteMode
from pubdata.db.models import CatalogEntry
from pubdata.store.delta import ROW_FLAGS, DatasetStore, VersionSummary
from pubdata.workspace import Workspace

BATCHES = 80
BATCH_ROWS = 10_000


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def batches(tag: str, scenario: str) -> Iterator[pa.RecordBatch]:
    print("streaming", flush=True)
    for i in range(BATCHES):
        if scenario == f"in_stream:{i}":
            die()
        numbers = pa.array(range(i * BATCH_ROWS, (i + 1) * BATCH_ROWS), pa.int64())
        keys = pc.binary_join_element_wise(pa.scalar(f"{tag}-"), pc.cast(numbers, pa.string()), "")
        yield pa.record_batch({"key": keys, "value": numbers, ROW_FLAGS: pa.nulls(BATCH_ROWS, pa.string())})


def main(home: str, code: str, mode: str, tag: str, scenario: str) -> None:
    workspace = Workspace.open(home)
    with workspace.sessions() as session:
        query = select(CatalogEntry).where(CatalogEntry.code == code)
        entry = session.scalars(query.options(selectinload(CatalogEntry.fields))).one()

    def summary() -> VersionSummary:
        if scenario == "after_commit":
            die()
        return VersionSummary()

    store = DatasetStore(workspace.data_dir, workspace.sessions)
    version = store.write(
        entry, batches(tag, scenario), WriteMode(mode), operator="crash-writer", summary=summary
    )
    print(f"done {version.version}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:6])
