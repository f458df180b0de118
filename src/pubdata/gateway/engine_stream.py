"""A query's result as a stream of Arrow record batches, under a time budget and a row cap.

Memory follows the batch size, not the result: DuckDB produces the next batch only when the
consumer asks for it. The time budget covers the whole life of the stream (execution and
consumption), because a stream left open holds engine threads and memory just like a slow query;
a timer thread interrupts the request's cursor when it runs out. When the stream ends, fails or is
closed (or dropped), the cursor is closed and with it the request's views and variables.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from types import TracebackType

import duckdb
import pyarrow as pa

from pubdata.gateway.engine_errors import QueryError, QueryTimeout


class Deadline:
    """Interrupts a cursor once `budget_s` has passed, unless cancelled first."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection, budget_s: float) -> None:
        self.budget_s = budget_s
        self.expired = False
        self._cancelled = False
        self._cursor = cursor
        self._lock = threading.Lock()
        self._timer = threading.Timer(budget_s, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            if not self._cancelled:
                self.expired = True
                with contextlib.suppress(duckdb.Error):  # closed already: nothing to stop
                    self._cursor.interrupt()

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            self._timer.cancel()


def _release(cursor: duckdb.DuckDBPyConnection, deadline: Deadline) -> None:
    deadline.cancel()
    with contextlib.suppress(duckdb.Error):
        cursor.close()


class QueryStream:
    """Record batches of one query: an iterator (read once), or `read_all` / `reader`.

    `truncated` becomes true when the query had more rows than `max_rows` (known once the stream
    has reached the cap); `rows` counts the rows handed out so far.
    """

    def __init__(
        self,
        reader: pa.RecordBatchReader,
        cursor: duckdb.DuckDBPyConnection,
        deadline: Deadline,
        *,
        max_rows: int | None,
        scrub: Callable[[str], str],
    ) -> None:
        self.schema: pa.Schema = reader.schema
        self.max_rows = max_rows
        self.rows = 0
        self.truncated = False
        self._reader = reader
        self._deadline = deadline
        self._scrub = scrub
        self._closed = False
        self._finalizer = weakref.finalize(self, _release, cursor, deadline)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self

    def __next__(self) -> pa.RecordBatch:
        while not self._closed and not self.truncated:
            batch = self._next()
            if batch is None:
                break
            if self.max_rows is not None and self.rows + batch.num_rows > self.max_rows:
                batch = batch.slice(0, self.max_rows - self.rows)
                self.truncated = True
            if batch.num_rows:
                self.rows += batch.num_rows
                return batch
        self.close()
        raise StopIteration

    def _next(self) -> pa.RecordBatch | None:
        message = None
        try:
            return self._reader.read_next_batch()
        except StopIteration:
            return None
        except (duckdb.Error, pa.ArrowException, OSError) as exc:  # pyarrow wraps DuckDB errors
            message = str(exc)
        # Raised outside the handler so that DuckDB's message (which may quote a secret) is not
        # kept as the context of the error the caller logs.
        self.close()
        if self._deadline.expired:
            raise QueryTimeout(self._deadline.budget_s)
        raise QueryError(self._scrub(message))

    def read_all(self) -> pa.Table:
        """The whole (capped) result as one table; for small results only."""
        return pa.Table.from_batches(list(self), schema=self.schema)

    def reader(self) -> pa.RecordBatchReader:
        """The stream as a `pyarrow.RecordBatchReader`, e.g. to write an Arrow IPC stream."""
        return pa.RecordBatchReader.from_batches(self.schema, iter(self))

    def close(self) -> None:
        """Stop the query and free its cursor; safe to call more than once."""
        self._closed = True
        self._finalizer()

    def __enter__(self) -> QueryStream:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
