"""Values made fit for strict JSON as DuckDB formats them: in its query for plain columns
(`json_value_sql`), in Arrow for nested ones (`json_ready`).

DuckDB's ``json_object`` writes a floating-point NaN or infinity as the bare words ``NaN`` and
``Infinity``, which no strict JSON parser accepts (``json.loads(..., parse_constant=...)``,
JavaScript's ``JSON.parse``, Go's ``encoding/json``), and a decimal as a bare number, which most
parsers read into a binary double: ``0.1 + 0.2`` of money amounts stops adding up, and a
``DECIMAL(38, 6)`` beyond 2^53 loses its last digits. So, for every JSON the gateway writes:

- a NaN or ±infinity is ``null`` (a missing measurement, as SQL's NULL is);
- a decimal is a JSON *string* of its exact digits with the column's scale (``"1.10"`` for
  ``DECIMAL(10, 2)``); the ``json`` answer's ``columns`` give the type (``decimal128(10, 2)``).

Both apply inside lists, structs and maps too. Columns that hold neither cost nothing: `needs` is
asked once per column from the schema.

Example:
    >>> from decimal import Decimal
    >>> import pyarrow as pa
    >>> json_ready(pa.array([1.5, float("nan"), float("-inf")])).to_pylist()
    [1.5, None, None]
    >>> json_ready(pa.array([Decimal("1.10"), None], pa.decimal128(10, 2))).to_pylist()
    ['1.10', None]
    >>> json_ready(pa.array([[0.5, float("inf")], None])).to_pylist()
    [[0.5, None], None]
"""

from __future__ import annotations

import threading
from functools import cache

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from pubdata.gateway.export_types import nested


def needs(kind: pa.DataType) -> bool:
    """Whether values of `kind` may hold a non-finite float or a decimal, at any depth."""
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return True
    if pa.types.is_dictionary(kind):
        return needs(kind.value_type)
    if pa.types.is_map(kind):
        return needs(kind.item_type)
    if _is_list(kind):
        return needs(kind.value_type)
    if pa.types.is_struct(kind):
        return any(needs(kind.field(i).type) for i in range(kind.num_fields))
    return False


def _is_list(kind: pa.DataType) -> bool:
    return bool(pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind))


def json_ready(values: pa.Array) -> pa.Array:
    """`values` with non-finite floats as nulls and decimals as exact text (see the module)."""
    kind = values.type
    if not needs(kind):
        return values
    if pa.types.is_floating(kind):
        if pa.types.is_float16(kind):
            values = values.cast(pa.float32())
        return pc.if_else(pc.is_finite(values), values, pa.scalar(None, values.type))
    if pa.types.is_decimal(kind):
        return values.cast(pa.string())
    if pa.types.is_dictionary(kind):
        return json_ready(values.dictionary_decode())
    nulls = pc.is_null(values) if values.null_count else None
    if pa.types.is_fixed_size_list(kind):
        values = values.cast(pa.list_(kind.value_field))
        kind = values.type
    if pa.types.is_map(kind) or _is_list(kind):
        # Arrow builds a list with a null mask only from offsets that start at 0: a sliced
        # batch's offsets are moved there, and its child values sliced to match.
        offsets = values.offsets
        start, end = offsets[0].as_py(), offsets[-1].as_py()
        offsets = pc.subtract(offsets, pa.scalar(start, offsets.type))
        if pa.types.is_map(kind):
            keys, items = values.keys.slice(start, end - start), values.items.slice(start, end - start)
            return pa.MapArray.from_arrays(offsets, keys, json_ready(items), mask=nulls)
        inner = json_ready(values.values.slice(start, end - start))
        build = pa.LargeListArray if pa.types.is_large_list(kind) else pa.ListArray
        return build.from_arrays(offsets, inner, mask=nulls)
    fields = [kind.field(i) for i in range(kind.num_fields)]
    children = [json_ready(child) for child in values.flatten()]
    return pa.StructArray.from_arrays(
        children, fields=[pa.field(f.name, c.type) for f, c in zip(fields, children, strict=True)], mask=nulls
    )


def _in_sql(kind: pa.DataType) -> bool:
    """Top-level floats and decimals are made ready by `json_value_sql`, in the same DuckDB pass
    that formats the row, without building a second Arrow column first."""
    return bool(pa.types.is_decimal(kind) or (pa.types.is_floating(kind) and not pa.types.is_float16(kind)))


def json_value_sql(column: exp.Expression, kind: pa.DataType) -> exp.Expression:
    """The value DuckDB formats for a column of `kind`: decimals as text, non-finite floats NULL."""
    if pa.types.is_decimal(kind):
        return exp.cast(column, exp.DataType.build("VARCHAR"))
    if _in_sql(kind):
        return exp.Case().when(exp.func("isfinite", column), column.copy())
    return column


def json_ready_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with its nested columns `json_ready` (top-level floats and decimals are left to
    `json_value_sql`); the same batch when no column needs it."""
    if not any(needs(f.type) and not _in_sql(f.type) for f in batch.schema):
        return batch
    columns = [c if _in_sql(c.type) else json_ready(c) for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


# --- the formatting connection -----------------------------------------------------------------

_FORMATTER_LOCK = threading.Lock()


@cache
def _formatter() -> duckdb.DuckDBPyConnection:
    """One in-memory connection per process for formatting; each job works in a cursor of it."""
    con = duckdb.connect(":memory:")
    con.execute("SET python_enable_replacements = false")
    con.execute("SET enable_external_access = false")
    return con


def formatting_cursor() -> duckdb.DuckDBPyConnection:
    with _FORMATTER_LOCK:
        return _formatter().cursor()


def json_texts(cursor: duckdb.DuckDBPyConnection, column: pa.Array) -> pa.Array:
    """One JSON text per value (NULL stays NULL), by the rules of the JSON formats: how CSV and
    spreadsheets write lists, structs and maps."""
    cursor.register("batch", pa.table({"c0": json_ready(column)}))
    try:
        texts = cursor.sql("SELECT CAST(to_json(c0) AS VARCHAR) AS j FROM batch").to_arrow_table()
        return texts.column("j").combine_chunks().cast(pa.large_string())
    finally:
        cursor.unregister("batch")


def nested_as_json(cursor: duckdb.DuckDBPyConnection | None, batch: pa.RecordBatch) -> pa.RecordBatch:
    if cursor is None:
        return batch
    columns = [json_texts(cursor, c) if nested(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def nested_cursor(schema: pa.Schema) -> duckdb.DuckDBPyConnection | None:
    """A formatting cursor when some column is nested (it becomes JSON text), else None."""
    return formatting_cursor() if any(nested(f.type) for f in schema) else None
