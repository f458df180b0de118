"""Parquet files streamed by row group, every column turned into the text a person would write.

Parquet has no header row, so `info.header_row` is 0 and rows are numbered from 1 in file order.
Typed values are rendered once here so the validation step sees the same strings as for CSV:
dates ISO, whole seconds without a fraction, integers without `.0`, no scientific notation.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pubdata.errors import InputError
from pubdata.ingest.source import SourceInfo
from pubdata.messages import text as sentence


class ParquetSource:
    """A Parquet file; nested columns (lists, structs, maps) are refused, as no field can hold them."""

    def __init__(self, path: Path) -> None:
        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(
                sentence("not a readable Parquet file: {detail}", detail=str(exc)), file=path.name
            ) from exc
        schema = self._file.schema_arrow
        for item in schema:
            if pa.types.is_nested(item.type):
                raise InputError(
                    sentence("nested type {kind} cannot be loaded; flatten it first", kind=str(item.type)),
                    file=path.name,
                    column=item.name,
                )
        self.info = SourceInfo(path=path, format="parquet", columns=list(schema.names), header_row=0)

    def batches(self, batch_rows: int) -> Iterator[tuple[int, pa.RecordBatch]]:
        row_no = 1
        for batch in self._file.iter_batches(batch_size=batch_rows):
            arrays = [self._text(batch.column(i), name) for i, name in enumerate(batch.schema.names)]
            yield row_no, pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)
            row_no += batch.num_rows

    def _text(self, column: pa.Array, name: str) -> pa.Array:
        kind = column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return column
        if pa.types.is_dictionary(kind):
            column = column.dictionary_decode()
            kind = column.type
        try:
            if pa.types.is_timestamp(kind) or pa.types.is_time(kind):
                column = _whole_seconds(column)
            text = pc.cast(column, pa.string())
        except pa.ArrowException as exc:
            raise InputError(
                sentence(
                    "values of type {kind} cannot be read as text: {detail}", kind=str(kind), detail=str(exc)
                ),
                file=self.info.path.name,
                column=name,
            ) from exc
        if pa.types.is_floating(kind) and pc.any(pc.match_substring(text, "e")).as_py():
            return pa.array([_plain(v) for v in column.to_pylist()], pa.string())
        return text


def _whole_seconds(column: pa.Array) -> pa.Array:
    """Drop an all-zero fraction so 12:30:00.000000 reads 12:30:00."""
    kind = column.type
    target = pa.timestamp("s", kind.tz) if pa.types.is_timestamp(kind) else pa.time32("s")
    coarse = pc.cast(column, target, safe=False)
    same = pc.all(pc.equal(pc.cast(coarse, kind), column)).as_py()
    return coarse if same in (True, None) else column


def _plain(value: float | None) -> str | None:
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None if value is None else str(value)
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
