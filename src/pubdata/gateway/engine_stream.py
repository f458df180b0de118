"""A query's result as a stream of Arrow record batches, under a time budget and a row cap.

Memory follows the batch size, not the result: DuckDB produces the next batch only when the
consumer asks for it. The time budget covers the whole life of the stream (execution and
consumption), because a stream left open holds engine threads and memory just like a slow query;
a timer thread interrupts the request's cursor when it runs out, and the memory watchdog
(`engine_watchdog`) may stop it the same way. DuckDB checks for an interrupt between the steps of
its work, not inside one function call building a giant value: such a call finishes first, so a
batch that arrives after the stop is an error too, never an answer. When the stream ends, fails or
is closed (or dropped), the cursor is closed and with it the request's views and variables.
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
from pubdata.gateway.engine_failures import FailureKind, QueryFailed
from pubdata.messages import text

#: Why a running query was stopped from outside.
TIME, MEMORY = "time", "memory"


class Deadline:
    """Interrupts a cursor once `budget_s` has passed or `stop` is called, unless cancelled first.

    `started` is a `time.monotonic` reading; the watchdog spares queries younger than its grace.
    """

    def __init__(self, cursor: duckdb.DuckDBPyConnection, budget_s: float, started: float = 0.0) -> None:
        self.budget_s = budget_s
        self.started = started
        #: `TIME`, `MEMORY`, or None while the query may run.
        self.stopped: str | None = None
        self.memory_mb = 0
        self._cancelled = False
        self._cursor = cursor
        self._lock = threading.Lock()
        self._timer = threading.Timer(budget_s, self.stop, (TIME,))
        self._timer.daemon = True
        self._timer.start()

    @property
    def expired(self) -> bool:
        return self.stopped == TIME

    def stop(self, reason: str, memory_mb: int = 0) -> None:
        """Interrupt the query (from any thread); the first reason given is the one reported."""
        with self._lock:
            if not self._cancelled and self.stopped is None:
                self.stopped, self.memory_mb = reason, memory_mb
                with contextlib.suppress(duckdb.Error):  # closed already: nothing to stop
                    self._cursor.interrupt()

    def failure(self) -> QueryError | None:
        """The error of a stopped query, or None if it was not stopped."""
        if self.stopped == TIME:
            return QueryTimeout(self.budget_s)
        if self.stopped == MEMORY:
            said = text(
                "the query was stopped: the server's memory for queries ({limit} MB) ran out",
                limit=self.memory_mb,
            )
            return QueryFailed(said, FailureKind.OUT_OF_MEMORY)
        return None

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            self._timer.cancel()


class QueryStream:
    """Record batches of one query: an iterator (read once), or `read_all` / `reader`.

    `truncated` becomes true when the query had more rows than `max_rows` (known once the stream
    has reached the cap); `rows` counts the rows handed out so far.
    """

    def __init__(
        self,
        reader: pa.RecordBatchReader,
        deadline: Deadline,
        *,
        max_rows: int | None,
        fail: Callable[[str], QueryError],
        release: Callable[[], None],
    ) -> None:
        """`fail` turns DuckDB's message into the error the sender may read (`engine_failures`);
        `release` frees the cursor, the timer and the watchdog's hold, once."""
        self.schema: pa.Schema = reader.schema
        self.max_rows = max_rows
        self.rows = 0
        self.truncated = False
        self._reader = reader
        self._deadline = deadline
        self._fail = fail
        self._closed = False
        self._finalizer = weakref.finalize(self, release)

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
        message: str | None = None
        batch: pa.RecordBatch | None = None
        try:
            batch = self._reader.read_next_batch()
        except StopIteration:
            pass
        except (duckdb.Error, pa.ArrowException, OSError) as exc:  # pyarrow wraps DuckDB errors
            message = str(exc)
        stopped = self._deadline.failure()
        if message is None and stopped is None:
            return batch
        # Raised outside the handler so that DuckDB's message (which may quote a secret or the
        # policy) is not kept as the context of the error the caller logs.
        self.close()
        raise stopped or self._fail(message or "")

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
