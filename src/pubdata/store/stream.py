"""The incoming batches as delta-rs consumes them: conformed, counted, key-checked, errors kept.

delta-rs pulls the batches through the Arrow C stream interface. An exception raised while it
pulls (the pipeline rejecting a file, a duplicate key found by `KeyGuard`) aborts the Delta
operation before its commit, but reaches Python again only as a ``DeltaError`` with the message
flattened into text. `IncomingStream` keeps the original exception so that the store re-raises it
unchanged, type and all.

Keys are checked while streaming, in every write mode: each batch's key columns (and the file
row of each record, when the caller sends them in `FILE_ROW`) go into a DuckDB table, and at the
end of the stream one ``GROUP BY`` finds keys repeated in the file and, for an append, one semi
join finds keys the table already holds. The write never sees the last batch end unless every key
is unique. The key table grows with the number of rows, so its DuckDB connection has a memory
limit and spills to a temporary directory beyond it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence

import duckdb
import pyarrow as pa

from pubdata.errors import InputError
from pubdata.messages import text as sentence
from pubdata.store.schema import conform

#: Optional column of incoming batches: each record's row in the source file, for messages only.
FILE_ROW = "__file_row"


def quote(name: str) -> str:
    """A SQL identifier for DuckDB and DataFusion, whatever characters the field name holds."""
    return '"' + name.replace('"', '""') + '"'


def mask(value: object) -> str:
    """A key value shown in an error without revealing it: a quarter kept at each end."""
    text = str(value)
    keep = len(text) // 4
    return text[:keep] + "*" * (len(text) - 2 * keep) + (text[-keep:] if keep else "")


class KeyGuard:
    """Collects key values batch by batch and refuses repeated keys (and, if asked, NULL or stored ones).

    `require_keys` refuses rows without a key (an upsert must match each row); `stored_files` are
    the Parquet files of the table's current version, whose keys an append must not repeat.
    """

    def __init__(
        self,
        key_fields: list[str],
        source: str = "",
        memory_limit: str = "128MB",
        *,
        require_keys: bool = True,
        stored_files: Sequence[str] = (),
    ) -> None:
        self.key_fields = key_fields
        self.source = source or None
        self.memory_limit = memory_limit
        self.require_keys = require_keys
        self.stored_files = list(stored_files)
        self._columns = ", ".join(quote(k) for k in key_fields)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._spill: tempfile.TemporaryDirectory[str] | None = None

    def add(self, batch: pa.RecordBatch, file_rows: pa.Array | None = None) -> None:
        rows = file_rows if file_rows is not None else pa.nulls(batch.num_rows, pa.int64())
        keys = pa.Table.from_batches([batch.select(self.key_fields)]).append_column(FILE_ROW, rows)
        if self._con is None:
            # Connected on first use: delta-rs pulls batches on its own thread.
            self._spill = tempfile.TemporaryDirectory(prefix="pubdata-keys-")
            self._con = duckdb.connect(
                config={"memory_limit": self.memory_limit, "temp_directory": self._spill.name}
            )
            self._con.register("incoming_keys", keys)
            self._con.execute("CREATE TABLE seen AS SELECT * FROM incoming_keys")
        else:
            self._con.register("incoming_keys", keys)
            self._con.execute("INSERT INTO seen SELECT * FROM incoming_keys")
        self._con.unregister("incoming_keys")

    def check(self) -> None:
        """Raise `InputError` naming the key columns, the count, the rows and a masked example."""
        if self._con is None:
            return
        con, named = self._con, ", ".join(self.key_fields)
        if self.require_keys:
            any_null = " OR ".join(f"{quote(k)} IS NULL" for k in self.key_fields)
            nulls = con.execute(f"SELECT count(*) FROM seen WHERE {any_null}").fetchone()
            if nulls and nulls[0]:
                raise InputError(
                    f"{nulls[0]} row(s) have no value for the key ({named}); an upsert needs every key",
                    file=self.source,
                    column=named,
                )
        self._refuse_repeats(con, named)
        if self.stored_files:
            self._refuse_stored(con, named)

    def _refuse_repeats(self, con: duckdb.DuckDBPyConnection, named: str) -> None:
        cols = self._columns
        all_set = " AND ".join(f"{quote(k)} IS NOT NULL" for k in self.key_fields)
        # A plain hash aggregate: listing every group's rows cost more than the whole check.
        con.execute(
            f"CREATE TEMP TABLE repeated AS SELECT {cols}, count(*) AS n, min({FILE_ROW}) AS first_row "
            f"FROM seen WHERE {all_set} GROUP BY {cols} HAVING count(*) > 1"
        )
        counts = con.execute("SELECT count(*), coalesce(sum(n), 0) FROM repeated").fetchone()
        if not counts or not counts[0]:
            return
        con.execute(
            f"CREATE TEMP TABLE example AS SELECT {cols}, first_row FROM repeated "
            f"ORDER BY first_row NULLS LAST, n DESC, {cols} LIMIT 1"
        )
        found = con.execute(f"SELECT {cols}, first_row FROM example").fetchone()
        after = con.execute(
            f"SELECT min(seen.{FILE_ROW}) FROM seen JOIN example USING ({cols}) "
            f"WHERE seen.{FILE_ROW} > example.first_row"
        ).fetchone()
        width = len(self.key_fields)
        found = found or (None,) * (width + 1)
        example = ", ".join(mask(v) for v in found[:width])
        first, second = found[width], after[0] if after else None
        common = {"count": counts[0], "rows": counts[1], "fields": named, "example": example}
        message = (
            sentence(
                "{count} key value(s) of ({fields}) occur more than once, in {rows} rows: "
                "e.g. {example} in rows {first} and {second}; each key may occur once",
                first=first,
                second=second,
                **common,
            )
            if first is not None and second is not None
            else sentence(
                "{count} key value(s) of ({fields}) occur more than once, in {rows} rows "
                "(e.g. {example}); each key may occur once",
                **common,
            )
        )
        raise InputError(message, file=self.source, row=first, column=named)

    def _refuse_stored(self, con: duckdb.DuckDBPyConnection, named: str) -> None:
        cols = self._columns
        con.execute(
            f"CREATE TEMP TABLE clashing AS SELECT {cols}, {FILE_ROW} FROM seen SEMI JOIN "
            f"(SELECT DISTINCT {cols} FROM read_parquet($files, union_by_name = true)) AS stored "
            f"USING ({cols})",
            {"files": self.stored_files},
        )
        found = con.execute(
            f"SELECT (SELECT count(*) FROM clashing), {cols}, {FILE_ROW} FROM clashing "
            f"ORDER BY {FILE_ROW} NULLS LAST LIMIT 1"
        ).fetchone()
        if not found:
            return
        width = len(self.key_fields)
        row = found[1 + width]
        raise InputError(
            sentence(
                "{count} row(s) carry a key of ({fields}) that is already stored (e.g. {example}); "
                "an append adds new keys only, an upsert changes stored rows",
                count=found[0],
                fields=named,
                example=", ".join(mask(v) for v in found[1 : 1 + width]),
            ),
            file=self.source,
            row=row,
            column=named,
        )

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._spill is not None:
            self._spill.cleanup()
            self._spill = None


class IncomingStream:
    """The caller's batches, conformed to the table schema, with their first exception kept."""

    def __init__(
        self,
        batches: Iterable[pa.RecordBatch],
        schema: pa.Schema,
        keys: KeyGuard | None = None,
        on_end: Callable[[int], None] | None = None,
    ) -> None:
        self.schema = schema
        self.rows = 0
        self.error: BaseException | None = None
        self._batches = batches
        self._keys = keys
        #: Called with the number of rows once the batches are exhausted; may refuse the write.
        self._on_end = on_end

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self._pull())

    def _pull(self) -> Iterator[pa.RecordBatch]:
        try:
            for incoming in self._batches:
                names = incoming.schema.names
                file_rows = incoming.column(FILE_ROW) if FILE_ROW in names else None
                batch = conform(incoming, self.schema)
                if self._keys is not None:
                    self._keys.add(batch, file_rows)
                self.rows += batch.num_rows
                yield batch
            if self._keys is not None:
                self._keys.check()
            if self._on_end is not None:
                self._on_end(self.rows)
        except GeneratorExit:
            raise
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            if self._keys is not None:
                self._keys.close()
