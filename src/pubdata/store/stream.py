"""The incoming batches as delta-rs consumes them: conformed, counted, key-checked, errors kept.

delta-rs pulls the batches through the Arrow C stream interface. An exception raised while it
pulls (the pipeline rejecting a file, a duplicate key found by `KeyGuard`) aborts the Delta
operation before its commit, but reaches Python again only as a ``DeltaError`` with the message
flattened into text. `IncomingStream` keeps the original exception so that the store re-raises it
unchanged, type and all.

Upsert keys are checked while streaming: each batch's key columns go into an in-memory DuckDB
table and one ``GROUP BY`` at the end of the stream finds duplicates, so the merge never sees the
last batch end unless every key is unique. The key table grows with the number of rows, so its
DuckDB connection has a memory limit and spills to a temporary directory beyond it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator

import duckdb
import pyarrow as pa

from pubdata.errors import InputError
from pubdata.store.schema import conform


def quote(name: str) -> str:
    """A SQL identifier for DuckDB and DataFusion, whatever characters the field name holds."""
    return '"' + name.replace('"', '""') + '"'


def mask(value: object) -> str:
    """A key value shown in an error without revealing it: a quarter kept at each end."""
    text = str(value)
    keep = len(text) // 4
    return text[:keep] + "*" * (len(text) - 2 * keep) + (text[-keep:] if keep else "")


class KeyGuard:
    """Collects key values batch by batch and refuses NULL or repeated keys at the end."""

    def __init__(self, key_fields: list[str], source: str = "", memory_limit: str = "128MB") -> None:
        self.key_fields = key_fields
        self.source = source or None
        self.memory_limit = memory_limit
        self._columns = ", ".join(quote(k) for k in key_fields)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._spill: tempfile.TemporaryDirectory[str] | None = None

    def add(self, batch: pa.RecordBatch) -> None:
        keys = pa.Table.from_batches([batch.select(self.key_fields)])
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
        """Raise `InputError` naming the key columns, the count and a masked example."""
        if self._con is None:
            return
        con, cols, named = self._con, self._columns, ", ".join(self.key_fields)
        any_null = " OR ".join(f"{quote(k)} IS NULL" for k in self.key_fields)
        nulls = con.execute(f"SELECT count(*) FROM seen WHERE {any_null}").fetchone()
        if nulls and nulls[0]:
            raise InputError(
                f"{nulls[0]} row(s) have no value for the key ({named}); an upsert needs every key",
                file=self.source,
                column=named,
            )
        con.execute(
            f"CREATE TEMP TABLE repeated AS SELECT {cols}, count(*) AS n FROM seen "
            f"GROUP BY {cols} HAVING count(*) > 1"
        )
        counts = con.execute("SELECT count(*), coalesce(sum(n), 0) FROM repeated").fetchone()
        if counts and counts[0]:
            example = con.execute(f"SELECT {cols} FROM repeated ORDER BY n DESC, {cols} LIMIT 1").fetchone()
            shown = ", ".join(mask(v) for v in example or ())
            raise InputError(
                f"{counts[0]} key value(s) of ({named}) occur more than once, in {counts[1]} rows "
                f"(e.g. {shown}); an upsert needs one row per key",
                file=self.source,
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
        self, batches: Iterable[pa.RecordBatch], schema: pa.Schema, keys: KeyGuard | None = None
    ) -> None:
        self.schema = schema
        self.rows = 0
        self.error: BaseException | None = None
        self._batches = batches
        self._keys = keys

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self._pull())

    def _pull(self) -> Iterator[pa.RecordBatch]:
        try:
            for incoming in self._batches:
                batch = conform(incoming, self.schema)
                if self._keys is not None:
                    self._keys.add(batch)
                self.rows += batch.num_rows
                yield batch
            if self._keys is not None:
                self._keys.check()
        except GeneratorExit:
            raise
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            if self._keys is not None:
                self._keys.close()
