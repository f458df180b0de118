"""The ``xlsx`` export: one sheet, a header row, then the rows, written cell by cell.

XlsxWriter has no columnar interface, so this is the one writer that touches each value in Python;
it is therefore *bounded* (built whole before the first byte, capped at Excel's 1 048 575 rows).
Text is never read as a formula, URL or number; zoned timestamps are shown as the workspace's wall
time (a cell has no zone, and XlsxWriter refuses zoned datetimes); lists, structs and maps are JSON
text and a NaN or infinity an empty cell, as in the JSON formats (`json_cells`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import xlsxwriter

from pubdata.gateway.json_cells import json_ready, nested_as_json, nested_cursor

if TYPE_CHECKING:
    from pubdata.gateway.export import ExportJob

#: Excel's sheet holds 1 048 576 rows, one of them the header.
XLSX_MAX_ROWS = 1_048_575
_CHUNK = 1 << 20


def wall_time(column: pa.Array, zone: str) -> pa.Array:
    """A zoned timestamp column as the wall-clock time of `zone`, without a zone; others as they are.

    XlsxWriter refuses zoned datetimes ("Excel doesn't support timezones"), and a cell has no zone:
    the sheet shows the time the workspace's people read on their clocks.
    """
    kind = column.type
    if not pa.types.is_timestamp(kind) or kind.tz is None:
        return column
    return pc.local_timestamp(column.cast(pa.timestamp(kind.unit, tz=zone)))


def _cells(cursor: duckdb.DuckDBPyConnection | None, batch: pa.RecordBatch, zone: str) -> list[list[Any]]:
    """The batch's values as spreadsheet cells, column by column: nested values as JSON text, a
    non-finite float as an empty cell (a cell has no NaN), zoned times as wall-clock times."""
    columns = nested_as_json(cursor, batch).columns
    return [
        wall_time(json_ready(c) if pa.types.is_floating(c.type) else c, zone).to_pylist() for c in columns
    ]


def write_xlsx(job: ExportJob) -> Iterator[bytes]:
    """One sheet, a header row, then the rows; text is never read as a formula, URL or number."""
    with tempfile.TemporaryDirectory(prefix="pubdata-xlsx-") as folder:
        path = Path(folder) / "result.xlsx"
        options = {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "default_date_format": "yyyy-mm-dd",
        }
        book = xlsxwriter.Workbook(str(path), options)
        sheet = book.add_worksheet("result")
        sheet.write_row(0, 0, job.schema.names)
        moment = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        formats = [moment if pa.types.is_timestamp(f.type) else None for f in job.schema]
        row = 1
        cursor = nested_cursor(job.schema)
        try:
            for batch in job.batches:
                for values in zip(*_cells(cursor, batch, job.zone), strict=True):
                    for col, (value, shown) in enumerate(zip(values, formats, strict=True)):
                        sheet.write(row, col, value, shown)
                    row += 1
        finally:
            if cursor is not None:
                cursor.close()
        book.close()
        with path.open("rb") as file:
            while chunk := file.read(_CHUNK):
                yield chunk
