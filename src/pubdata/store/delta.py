"""Delta tables per entry: write modes, version index, time travel, change feed.

Each catalogue entry's rows live in one Delta table at ``data_dir/<entry code>``; the metadata
database's ``dataset_versions`` table is the *index* of its versions, and only indexed versions
exist for the platform. A write, under the entry's writer lock (`locking`):

1. opens the table (creating it with an empty, never-listed version 0) and rolls back any Delta
   commit newer than the last indexed version (a write killed after its commit, see `recovery`);
2. streams the caller's batches into exactly one Delta commit (append, overwrite or merge on the
   entry's key fields), with operator, source and a write id in the commit's own metadata;
3. asks the caller for its `VersionSummary` and indexes the new version in one database
   transaction, together with the entry's ``data_updated_at``.

An exception from the incoming batches (a rejected file, duplicate upsert keys) aborts step 2
before the commit and comes out unchanged. A failure in step 3 is rolled back at once; a kill
between 2 and 3 is rolled back by the next write, and until then readers are unaffected because
``file_uris``/``read`` without a version serve the last indexed version, never Delta's latest.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, WriterProperties, write_deltalake
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from pubdata import audit
from pubdata.catalog.classes import WriteMode
from pubdata.db.models import CatalogEntry, DatasetVersion, utcnow
from pubdata.errors import InputError, NotFound, PubdataError
from pubdata.messages import text as sentence
from pubdata.store.locking import writer_lock
from pubdata.store.recovery import describe, restore_indexed, unindexed_commits
from pubdata.store.schema import ROW_FLAGS, arrow_schema, plain_schema, plain_strings
from pubdata.store.stream import IncomingStream, KeyGuard, quote
from pubdata.store.tables import UnsupportedTable, ensure_table, open_table, table_schema

__all__ = [
    "ROW_FLAGS",
    "DatasetStore",
    "StoreError",
    "UnsupportedTable",
    "VersionSummary",
    "arrow_schema",
]

#: Actor of the audit events the store writes on its own (rollbacks of killed writes).
STORE_ACTOR = "system:store"
#: The writer holds a row group and a whole file in memory until they are full: delta-rs's defaults
#: (about 1 M rows, 100 MB) made peak memory grow with the upload up to a few hundred MB. These
#: bound it; DuckDB writes row groups of the same size.
ROW_GROUP_ROWS = 122_880
TARGET_FILE_BYTES = 32 << 20


#: A column's dictionary is given up for plain encoding beyond this size. Identifiers (one value per
#: row) never fit; the default 1 MB only wasted the work of filling it (writing 1 M rows: 0.47 s ->
#: 0.35 s CPU, files no larger).
DICTIONARY_PAGE_BYTES = 256 << 10


def _writer_properties() -> WriterProperties:
    # Compression is named: a WriterProperties without it writes uncompressed files (twice the size).
    return WriterProperties(
        compression="SNAPPY",
        max_row_group_size=ROW_GROUP_ROWS,
        dictionary_page_size_limit=DICTIONARY_PAGE_BYTES,
    )


def _holds_rows(files: Sequence[str]) -> bool:
    """Whether a version's files hold any row (read from the Parquet footers only)."""
    if not files:
        return False
    with duckdb.connect() as con:
        found = con.execute("SELECT count(*) FROM read_parquet($files)", {"files": list(files)}).fetchone()
    return bool(found and found[0])


class StoreError(PubdataError):
    """A write could not be committed for a reason other than its input."""


@dataclass
class VersionSummary:
    """What the index records about a write once its stream has been consumed."""

    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    rows_flagged: int = 0
    quality: dict[str, Any] = field(default_factory=dict)


class DatasetStore:
    def __init__(self, data_dir: Any, sessions: sessionmaker[Session]) -> None:
        self.data_dir = Path(data_dir)
        self.sessions = sessions

    def table_path(self, entry: CatalogEntry) -> Path:
        return self.data_dir / entry.code

    # -- writing ---------------------------------------------------------------------------------

    def write(
        self,
        entry: CatalogEntry,
        batches: Iterable[pa.RecordBatch],
        mode: WriteMode,
        *,
        operator: str,
        source_file: str = "",
        source_sha256: str = "",
        summary: Callable[[], VersionSummary] = VersionSummary,
        update_fields: Sequence[str] | None = None,
        allow_empty: bool = False,
    ) -> DatasetVersion:
        """Stream `batches` (of `arrow_schema(entry)`) into one new version and index it.

        Key fields, when the entry has them, are unique in every mode: within the batches, and for
        an append also against the stored rows. A batch column `FILE_ROW` (optional) gives each
        record's row in the source file for the messages. `update_fields` limits what an upsert
        changes in matched rows (a file without some columns must not blank their stored values).
        A replace by zero rows of a table that holds rows is refused unless `allow_empty`.
        """
        schema = arrow_schema(entry)
        key_fields = self._key_fields(entry, schema) if mode is WriteMode.UPSERT or entry.key_fields else []
        # Messages name the file, not where it lay on the server.
        file_name = Path(source_file).name if source_file else ""
        keys = KeyGuard(key_fields, file_name, require_keys=mode is WriteMode.UPSERT) if key_fields else None
        stored: list[str] = []

        def refuse_emptying(rows: int) -> None:
            if rows == 0 and mode is WriteMode.REPLACE and not allow_empty and _holds_rows(stored):
                raise InputError(
                    sentence(
                        "the replace would leave the table empty although it holds rows; "
                        "nothing was written (allow an empty replace to do this on purpose)"
                    ),
                    file=file_name or None,
                )

        stream = IncomingStream(batches, schema, keys, on_end=refuse_emptying)
        metadata = {
            "pubdata.entry": entry.code,
            "pubdata.mode": mode.value,
            "pubdata.operator": operator,
            "pubdata.source_file": source_file,
            "pubdata.source_sha256": source_sha256,
            "pubdata.write_id": uuid.uuid4().hex,
        }
        path = self.table_path(entry)
        with writer_lock(path):
            table = ensure_table(path, schema, entry.code)
            self._roll_back_unindexed(entry, table, reason=f"found before a write by {operator}")
            before = table.version()
            stored[:] = table.file_uris()
            if keys is not None and mode is WriteMode.APPEND:
                keys.stored_files = stored
            try:
                properties = CommitProperties(custom_metadata=metadata)
                version = self._commit(table, stream, mode, entry, properties, update_fields)
                if version == before:
                    raise StoreError(f"the write to {entry.code} committed no version")
                return self._index(
                    entry, version, mode, operator, source_file, source_sha256, summary(), stream.rows
                )
            except BaseException as exc:
                try:
                    self._roll_back_unindexed(entry, open_table(path), reason=f"write failed: {exc!r}"[:500])
                except Exception as undo:  # the next write retries the rollback
                    exc.add_note(f"rollback deferred to the next write: {undo}")
                if stream.error is not None:
                    raise stream.error from None
                if isinstance(exc, Exception) and not isinstance(exc, PubdataError):
                    raise StoreError(f"write to {entry.code} failed: {exc}") from exc
                raise

    def recover(self, entry: CatalogEntry) -> list[int]:
        """Roll back Delta commits that were never indexed; the versions undone (usually none)."""
        path = self.table_path(entry)
        if not DeltaTable.is_deltatable(str(path)):
            return []
        with writer_lock(path):
            return self._roll_back_unindexed(entry, open_table(path), reason="recovery requested")

    @staticmethod
    def _key_fields(entry: CatalogEntry, schema: pa.Schema) -> list[str]:
        keys = [str(k) for k in entry.key_fields or ()]
        if not keys:
            raise PubdataError(f"entry {entry.code} declares no key fields, so it cannot be upserted")
        unknown = [k for k in keys if k not in schema.names]
        if unknown:
            raise PubdataError(f"entry {entry.code}: key field(s) {', '.join(unknown)} are not fields")
        return keys

    def _commit(
        self,
        table: DeltaTable,
        stream: IncomingStream,
        mode: WriteMode,
        entry: CatalogEntry,
        properties: CommitProperties,
        update_fields: Sequence[str] | None = None,
    ) -> int:
        """Run the Delta operation; the version it committed."""
        before = table.version()
        evolved = not table_schema(table).equals(stream.schema)
        if mode is WriteMode.UPSERT:
            on = " AND ".join(f"target.{quote(k)} = source.{quote(k)}" for k in entry.key_fields)
            merge = table.merge(
                stream.reader(),
                on,
                source_alias="source",
                target_alias="target",
                merge_schema=evolved,
                writer_properties=_writer_properties(),
                commit_properties=properties,
            )
            if update_fields is None:
                merge = merge.when_matched_update_all()
            else:
                changed = [n for n in stream.schema.names if n in update_fields or n == ROW_FLAGS]
                merge = merge.when_matched_update({quote(n): f"source.{quote(n)}" for n in changed})
            merge.when_not_matched_insert_all().execute()
        else:
            write_deltalake(
                table,
                stream.reader(),
                mode="append" if mode is WriteMode.APPEND else "overwrite",
                schema_mode=("overwrite" if mode is WriteMode.REPLACE else "merge") if evolved else None,
                target_file_size=TARGET_FILE_BYTES,
                writer_properties=_writer_properties(),
                commit_properties=properties,
            )
        table.update_incremental()
        if table.version() == before:
            # A merge with nothing to do on an empty table commits nothing; a write is a version.
            write_deltalake(table, stream.schema.empty_table(), mode="append", commit_properties=properties)
            table.update_incremental()
        return int(table.version())

    def _index(
        self,
        entry: CatalogEntry,
        version: int,
        mode: WriteMode,
        operator: str,
        source_file: str,
        source_sha256: str,
        report: VersionSummary,
        streamed_rows: int,
    ) -> DatasetVersion:
        counted = report.rows_read or report.rows_written or report.rows_rejected
        now = utcnow()
        row = DatasetVersion(
            entry_id=entry.id,
            version=version,
            mode=mode,
            operator=operator,
            source_file=source_file,
            source_sha256=source_sha256,
            rows_read=report.rows_read if counted else streamed_rows,
            rows_written=report.rows_written if counted else streamed_rows,
            rows_rejected=report.rows_rejected,
            rows_flagged=report.rows_flagged,
            quality=report.quality,
            created_at=now,
        )
        with self.sessions() as session, session.begin():
            session.add(row)
            stored = session.get(CatalogEntry, entry.id)
            if stored is None:
                raise NotFound(f"entry {entry.code} is not in the catalogue")
            stored.data_updated_at = now
        entry.data_updated_at = now
        return row

    def _roll_back_unindexed(self, entry: CatalogEntry, table: DeltaTable, reason: str) -> list[int]:
        last = self._last_indexed(entry)
        pending = unindexed_commits(table, last)
        if not pending:
            return []
        restored_as = restore_indexed(table, last, reason)
        with self.sessions() as session, session.begin():
            audit.record(
                session,
                STORE_ACTOR,
                "store.rollback",
                entry.code,
                reason=reason,
                restored_to=last,
                restore_version=restored_as,
                rolled_back=[describe(c) for c in pending],
            )
        return sorted(int(c["version"]) for c in pending)

    # -- reading ---------------------------------------------------------------------------------

    def versions(self, session: Session, entry: CatalogEntry) -> list[DatasetVersion]:
        query = select(DatasetVersion).where(DatasetVersion.entry_id == entry.id)
        return list(session.scalars(query.order_by(DatasetVersion.version)))

    def _last_indexed(self, entry: CatalogEntry) -> int:
        """The newest listed version, or 0 (the empty baseline) before the first write."""
        with self.sessions() as session:
            query = select(func.max(DatasetVersion.version)).where(DatasetVersion.entry_id == entry.id)
            return int(session.scalar(query) or 0)

    def _listed(self, entry: CatalogEntry, version: int | None) -> int | None:
        """`version` checked against the index; None asks for the latest (None if none yet)."""
        if version is None:
            last = self._last_indexed(entry)
            return last or None
        with self.sessions() as session:
            found = session.scalar(
                select(DatasetVersion.version).where(
                    DatasetVersion.entry_id == entry.id, DatasetVersion.version == version
                )
            )
        if found is None:
            raise NotFound(f"entry {entry.code} has no version {version}")
        return version

    def file_uris(self, entry: CatalogEntry, version: int | None = None) -> list[str]:
        """The Parquet files that make up a listed version (latest listed by default)."""
        listed = self._listed(entry, version)
        if listed is None:
            return []
        return list(open_table(self.table_path(entry), listed).file_uris())

    def read(
        self, entry: CatalogEntry, version: int | None = None, columns: list[str] | None = None
    ) -> pa.Table:
        """A listed version's rows, read by DuckDB from its file list."""
        listed = self._listed(entry, version)
        if listed is None:
            schema, files = arrow_schema(entry), []
        else:
            table = open_table(self.table_path(entry), listed)
            schema, files = table_schema(table), list(table.file_uris())
        if columns is None:  # the entry's order; fields dropped from the entry since come last
            current = [n for n in arrow_schema(entry).names if n in schema.names]
            columns = current + [n for n in schema.names if n not in current]
        names = columns
        for name in names:
            if name not in schema.names:
                raise InputError(f"entry {entry.code} has no such field", column=name)
        wanted = pa.schema([schema.field(n) for n in names])
        if not files:
            return wanted.empty_table()
        selected = ", ".join(quote(n) for n in names)
        with duckdb.connect() as con:
            result = con.sql(
                f"SELECT {selected} FROM read_parquet($files, union_by_name = true)",
                params={"files": files},
            ).to_arrow_table()
        return plain_strings(result).cast(wanted)

    def row_count(self, entry: CatalogEntry, version: int | None = None) -> int:
        files = self.file_uris(entry, version)
        if not files:
            return 0
        with duckdb.connect() as con:
            found = con.execute("SELECT count(*) FROM read_parquet($files)", {"files": files}).fetchone()
        return int(found[0]) if found else 0

    def changes(self, entry: CatalogEntry, start: int, end: int | None = None) -> pa.Table:
        """Row changes committed by the listed versions from `start` to `end` (inclusive).

        Columns: the table's fields plus ``_change_type`` (insert, update_preimage,
        update_postimage, delete), ``_commit_version`` and ``_commit_timestamp``. Commits that were
        never listed (a killed write and its rollback) are left out.
        """
        with self.sessions() as session:
            listed = [v.version for v in self.versions(session, entry)]
        last = end if end is not None else max(listed, default=0)
        keep = pa.array([v for v in listed if start <= v <= last], pa.uint64())
        if start < 0 or start > last or len(keep) == 0:
            raise NotFound(f"entry {entry.code} has no listed versions between {start} and {last}")
        table = open_table(self.table_path(entry))
        feed = pa.RecordBatchReader.from_stream(table.load_cdf(starting_version=start, ending_version=last))
        plain = feed.cast(plain_schema(feed.schema))
        kept = [b.filter(pc.is_in(b.column("_commit_version"), value_set=keep)) for b in plain]
        return pa.Table.from_batches(kept, schema=plain.schema)
