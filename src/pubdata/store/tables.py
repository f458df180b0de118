"""Opening and creating an entry's Delta table, refusing tables whose files cannot be listed.

Readers take a version's Parquet files from ``file_uris()`` and hand them to DuckDB. That list is
only the truth when the table has no deletion vectors (rows hidden without rewriting a file) and
no column mapping (physical column names differing from logical ones), so tables are created with
both off and any table showing either is refused on open.

Every table starts with an empty version 0, written when the table is created. It is the baseline
that a write killed before the first indexed version rolls back to, and it is never listed.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable

from pubdata.errors import PubdataError

#: Table properties set at creation: change data feed for `changes`, no deletion vectors.
TABLE_CONFIGURATION: dict[str, str | None] = {
    "delta.enableChangeDataFeed": "true",
    "delta.enableDeletionVectors": "false",
}


class UnsupportedTable(PubdataError):
    """The Delta table uses a feature that makes its file list wrong for readers."""


def check_protocol(table: DeltaTable, path: Path) -> None:
    protocol = table.protocol()
    features = set(protocol.reader_features or ()) | set(protocol.writer_features or ())
    config = table.metadata().configuration
    if "deletionVectors" in features or config.get("delta.enableDeletionVectors") == "true":
        raise UnsupportedTable(
            f"{path}: the table uses deletion vectors, so its file list does not show deleted rows; "
            "rewrite it without them (e.g. REORG ... APPLY (PURGE) and disable the feature)"
        )
    if "columnMapping" in features or config.get("delta.columnMapping.mode", "none") not in ("none", None):
        raise UnsupportedTable(
            f"{path}: the table uses column mapping, so its Parquet column names are not the field names"
        )


def open_table(path: Path, version: int | None = None) -> DeltaTable:
    """The table (at `version`), checked for features that readers cannot honour."""
    table = DeltaTable(str(path), version=version)
    check_protocol(table, path)
    return table


def ensure_table(path: Path, schema: pa.Schema, entry_code: str) -> DeltaTable:
    """Open the table, creating it with its empty baseline version 0 on first use."""
    if not DeltaTable.is_deltatable(str(path)):
        DeltaTable.create(
            str(path),
            schema,
            mode="error",
            name=entry_code,
            configuration=TABLE_CONFIGURATION,
            commit_properties=CommitProperties(custom_metadata={"pubdata.entry": entry_code}),
        )
    return open_table(path)


def table_schema(table: DeltaTable) -> pa.Schema:
    """The table's schema as pyarrow types (delta-rs hands out an arro3 schema)."""
    return pa.schema(table.schema().to_arrow())
