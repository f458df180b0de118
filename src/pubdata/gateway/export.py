"""Export formats of the gateway: one registry, name → writer; the built-ins use it too.

A writer turns a query's Arrow record batches into bytes, batch by batch, so memory follows the
batch size, not the result. Rows are never formatted by Python: CSV, Arrow IPC and Parquet by
pyarrow, JSON by DuckDB's ``json_object`` / ``json_array`` over each batch (a private in-memory
connection that runs only the fixed SQL of this module, never a user's). Only ``xlsx`` writes cell by
cell (`export_xlsx`), because XlsxWriter has no other way; it is therefore *bounded* like ``json``:
both are built whole before the first byte is sent, so their row cap applies and the truncation is
known up front. What each format does with NaN, decimals, nested values and types it cannot carry is
`json_cells` and `export_types` (docs/values.md).

A stream that fails midway must not look like a complete file. After the bytes already sent, the
streamed formats end with their `ExportFormat.failure` marker:

- ``csv``: a last line ``# error: <message>``;
- ``jsonl``: a last line ``{"error": "<message>"}``;
- ``arrow``: an unterminated IPC message carrying ``pubdata-error: <message>``, so that
  ``pyarrow.ipc.open_stream`` raises instead of seeing the end-of-stream marker, which is written
  only on success;
- ``parquet``: nothing more — the footer, written only on success, is missing and readers refuse
  the file.

Example:
    >>> import pyarrow as pa
    >>> rows = pa.table({"区划": ["330402", "330411"], "n": [1, 2]})
    >>> job = ExportJob(rows.schema, rows.to_batches())
    >>> print(b"".join(FORMATS["jsonl"].write(job)).decode())
    {"区划":"330402","n":1}
    {"区划":"330411","n":2}
    <BLANKLINE>
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlglot import exp

from pubdata.errors import InputError
from pubdata.gateway import csv_cells
from pubdata.gateway.export_types import TypeCheck, check_schema, refused_in_parquet, refused_in_text
from pubdata.gateway.export_xlsx import XLSX_MAX_ROWS, write_xlsx
from pubdata.gateway.json_cells import (
    formatting_cursor,
    json_ready_batch,
    json_value_sql,
    nested_as_json,
    nested_cursor,
)
from pubdata.messages import text
from pubdata.workflow.working_days import LOCAL_TZ

UTF8_BOM = b"\xef\xbb\xbf"
#: An Arrow IPC continuation marker followed by a metadata length no reader can satisfy.
_ARROW_BROKEN = b"\xff\xff\xff\xff" + (0x7FFFFFFF).to_bytes(4, "little")


@dataclass
class ExportJob:
    """What a writer gets: the result's schema and batches, and the answer's metadata."""

    schema: pa.Schema
    batches: Iterable[pa.RecordBatch]
    #: CSV as stored, for programs: no formula neutralising (`csv_cells`), LF line ends, and no
    #: byte-order mark unless `bom` asks for one. The default CSV is for Excel.
    csv_raw: bool = False
    #: Start CSV with a UTF-8 byte-order mark, so that Excel opens Chinese text correctly; None:
    #: unless `csv_raw`.
    bom: bool | None = None
    #: The zone a spreadsheet shows zoned timestamps in (Excel cells have no zone).
    zone: str = LOCAL_TZ.key
    #: Extra members of the ``json`` answer object (``policy``, ``offset`` …).
    meta: Mapping[str, Any] = field(default_factory=dict)
    #: Whether rows were cut at the row cap; asked after the batches are consumed.
    truncated: Callable[[], bool] = lambda: False


Writer = Callable[[ExportJob], Iterator[bytes]]


@dataclass(frozen=True)
class ExportFormat:
    """One way of writing a result."""

    name: str
    media_type: str
    extension: str
    write: Writer
    #: Built whole before sending: capped at `max_rows`, truncation known up front.
    bounded: bool = False
    #: Needs a token with the ``export`` scope (bulk delivery) rather than ``query``.
    bulk: bool = True
    #: Rows when the caller gives no cap (None: the whole result).
    default_rows: int | None = None
    #: Most rows a caller may ask for (None: no limit).
    max_rows: int | None = None
    #: Bytes that end a stream which failed midway (see the module docstring).
    failure: Callable[[str], bytes] = lambda message: b""
    #: Why a column type cannot be written (`export_types`); asked before the first byte.
    refuses: TypeCheck = lambda kind: None

    def check(self, schema: pa.Schema) -> None:
        """Raise `UnsupportedColumn` if a column of `schema` cannot be written in this format."""
        check_schema(schema, self.name, self.refuses)


#: Every format the gateway serves, by name.
FORMATS: dict[str, ExportFormat] = {}


def register(export_format: ExportFormat) -> ExportFormat:
    """Add (or replace) a format; the API, the CLI and the docs list what is registered."""
    FORMATS[export_format.name] = export_format
    return export_format


def get_format(name: str) -> ExportFormat:
    found = FORMATS.get(name.strip().lower())
    if found is None:
        raise InputError(
            text(
                "unknown format {name!r}: use one of {formats}", name=name, formats=", ".join(sorted(FORMATS))
            )
        )
    return found


def one_line(message: str) -> str:
    return " ".join(message.split())


# --- sinks and batches -----------------------------------------------------------------------


class _Sink(io.RawIOBase):
    """A file pyarrow writes into; `take` hands over what was written since the last call."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        taken, self._parts = b"".join(self._parts), []
        return taken


def _positional(batch: pa.RecordBatch) -> pa.Table:
    """The batch with columns named c0, c1 …: result names may repeat or be anything at all."""
    return pa.Table.from_batches([batch]).rename_columns([f"c{i}" for i in range(batch.num_columns)])


def _joined(strings: pa.ChunkedArray, separator: str) -> bytes:
    """All strings joined by `separator`, in C."""
    if len(strings) == 0:
        return b""
    flat = strings.combine_chunks()
    listed = pa.ListArray.from_arrays(pa.array([0, len(flat)], pa.int32()), flat)
    joined = pc.binary_join(listed, separator)[0].as_py()
    return str(joined).encode("utf-8")


def _concatenated(strings: pa.ChunkedArray) -> bytes:
    """The values back to back, sliced straight out of Arrow's data buffers.

    Going through Python strings (``binary_join(...).as_py().encode()``) decoded and re-encoded
    every byte and took longer than DuckDB's formatting itself: 0.6 s of 1.1 s per 1 M rows.
    """
    parts: list[bytes] = []
    for chunk in strings.chunks:
        if chunk.type not in (pa.string(), pa.large_string()):
            chunk = chunk.cast(pa.large_string())
        _, offsets, data = chunk.buffers()
        if len(chunk) == 0 or offsets is None or data is None:
            continue
        bounds = memoryview(offsets).cast("i" if chunk.type == pa.string() else "q")
        start, end = bounds[chunk.offset], bounds[chunk.offset + len(chunk)]
        parts.append(data[start:end].to_pybytes())
    return b"".join(parts)


def json_rows(
    cursor: duckdb.DuckDBPyConnection, batch: pa.RecordBatch, *, objects: bool, end: str = ""
) -> pa.ChunkedArray:
    """One JSON text per row, followed by `end`: objects keyed by column name, or arrays in column
    order."""
    columns = [json_value_sql(exp.column(f"c{i}"), f.type) for i, f in enumerate(batch.schema)]
    row: exp.Expression
    if objects:
        args: list[exp.Expression] = []
        for name, column in zip(batch.schema.names, columns, strict=True):
            args += [exp.Literal.string(name), column]
        row = exp.Anonymous(this="json_object", expressions=args)
    else:
        row = exp.Anonymous(this="json_array", expressions=columns)
    if end:
        row = exp.DPipe(this=row, expression=exp.Literal.string(end), safe=True)
    cursor.register("batch", _positional(json_ready_batch(batch)))
    try:
        query = exp.select(row.as_("j")).from_("batch").sql("duckdb")
        return cursor.sql(query).to_arrow_table().column("j")
    finally:
        cursor.unregister("batch")


# --- the built-in writers ----------------------------------------------------------------------


def write_csv(job: ExportJob) -> Iterator[bytes]:
    """For Excel unless `ExportJob.csv_raw`: a BOM, CRLF line ends, formula-like text neutralised."""
    sink = _Sink()
    if job.bom or (job.bom is None and not job.csv_raw):
        sink.write(UTF8_BOM)
    schema = csv_cells.safe_schema(job.schema, raw=job.csv_raw)
    options = pacsv.WriteOptions(eol="\n" if job.csv_raw else "\r\n")
    cursor = nested_cursor(job.schema)
    try:
        with pacsv.CSVWriter(sink, schema, write_options=options) as writer:
            for batch in job.batches:
                batch = nested_as_json(cursor, batch)
                if job.csv_raw:
                    writer.write_batch(batch.cast(schema))
                else:
                    writer.write_batch(csv_cells.neutralise(batch, schema))
                yield sink.take()
        yield sink.take()
    finally:
        if cursor is not None:
            cursor.close()


def write_jsonl(job: ExportJob) -> Iterator[bytes]:
    cursor = formatting_cursor()
    try:
        for batch in job.batches:
            yield _concatenated(json_rows(cursor, batch, objects=True, end="\n"))
    finally:
        cursor.close()


def write_json(job: ExportJob) -> Iterator[bytes]:
    """``{"columns", "rows", "truncated", …meta}``; rows are arrays in the order of ``columns``."""
    cursor = formatting_cursor()
    parts: list[bytes] = []
    try:
        for batch in job.batches:
            rows = json_rows(cursor, batch, objects=False)
            if len(rows):
                parts.append(_joined(rows, ","))
    finally:
        cursor.close()
    columns = [{"name": f.name, "type": str(f.type)} for f in job.schema]
    head = json.dumps({"columns": columns}, ensure_ascii=False)[:-1].encode("utf-8")
    tail = {"truncated": job.truncated(), **job.meta}
    yield head + b',"rows":[' + b",".join(parts) + b"]," + json.dumps(tail, ensure_ascii=False)[1:].encode()


def write_arrow(job: ExportJob) -> Iterator[bytes]:
    sink = _Sink()
    with pa.ipc.new_stream(sink, job.schema) as writer:
        yield sink.take()
        for batch in job.batches:
            writer.write_batch(batch)
            yield sink.take()
    yield sink.take()


def write_parquet(job: ExportJob) -> Iterator[bytes]:
    sink = _Sink()
    with pq.ParquetWriter(sink, job.schema, compression="zstd") as writer:
        for batch in job.batches:
            writer.write_batch(batch)
            yield sink.take()
    yield sink.take()


def _text_trailer(template: str) -> Callable[[str], bytes]:
    return lambda message: template.format(one_line(message)).encode("utf-8")


register(
    ExportFormat(
        "json",
        "application/json",
        "json",
        write_json,
        bounded=True,
        bulk=False,
        default_rows=1_000,
        max_rows=10_000,
    )
)
register(
    ExportFormat(
        "jsonl",
        "application/x-ndjson",
        "jsonl",
        write_jsonl,
        failure=lambda message: (
            json.dumps({"error": one_line(message)}, ensure_ascii=False) + "\n"
        ).encode(),
    )
)
register(
    ExportFormat(
        "csv",
        "text/csv; charset=utf-8",
        "csv",
        write_csv,
        failure=_text_trailer("# error: {}\n"),
        refuses=refused_in_text,
    )
)
register(
    ExportFormat(
        "arrow",
        "application/vnd.apache.arrow.stream",
        "arrows",
        write_arrow,
        failure=lambda message: _ARROW_BROKEN + f"pubdata-error: {one_line(message)}".encode(),
    )
)
register(
    ExportFormat(
        "parquet", "application/vnd.apache.parquet", "parquet", write_parquet, refuses=refused_in_parquet
    )
)
register(
    ExportFormat(
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xlsx",
        write_xlsx,
        bounded=True,
        default_rows=100_000,
        max_rows=XLSX_MAX_ROWS,
        refuses=refused_in_text,
    )
)
