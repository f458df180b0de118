"""The Arrow schema of an entry's table, and how incoming batches are made to fit it.

Decimals are stored as ``decimal128(38, 6)``, not ``float64``: public data carries money amounts and
rates that must add up exactly (a subsidy total reconciled against a ledger), six decimals cover
every unit the catalogue uses, and DuckDB, Delta and Spark all read the type natively. A value with
more than six decimals is refused by the cast rather than silently rounded.

Timestamps are UTC microseconds; dates are calendar days without a zone.
"""

from __future__ import annotations

import pyarrow as pa

from pubdata.catalog.classes import FieldType
from pubdata.db.models import CatalogEntry
from pubdata.errors import InputError

#: Column present in every table: NULL for clean rows, the reasons for rows accepted with flags.
ROW_FLAGS = "__row_flags"

#: Exact decimals; see the module docstring for why not float64.
DECIMAL_TYPE = pa.decimal128(38, 6)

ARROW_TYPES: dict[FieldType, pa.DataType] = {
    FieldType.STRING: pa.string(),
    FieldType.INTEGER: pa.int64(),
    FieldType.DECIMAL: DECIMAL_TYPE,
    FieldType.DATE: pa.date32(),
    FieldType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    FieldType.BOOLEAN: pa.bool_(),
}


def arrow_schema(entry: CatalogEntry) -> pa.Schema:
    """The Delta table schema of an entry: its fields in order, typed, plus `ROW_FLAGS`."""
    ordered = sorted(entry.fields, key=lambda f: f.position)
    columns = [pa.field(f.name, ARROW_TYPES[FieldType(f.data_type)], nullable=True) for f in ordered]
    return pa.schema([*columns, pa.field(ROW_FLAGS, pa.string(), nullable=True)])


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` with the schema's columns in its order and types.

    Readers and the pipeline may hand over columns in another order, ``string_view`` or
    ``large_string`` columns, or no `ROW_FLAGS` column when nothing was flagged; all of that is
    fixed here, per batch and vectorised. A missing or uncastable column is an input error.
    """
    if batch.schema.equals(schema):
        return batch
    present = set(batch.schema.names)
    arrays: list[pa.Array] = []
    for target in schema:
        if target.name not in present:
            if target.name != ROW_FLAGS:
                raise InputError("column missing from the incoming data", column=target.name)
            arrays.append(pa.nulls(batch.num_rows, target.type))
            continue
        column = batch.column(target.name)
        if not column.type.equals(target.type):
            try:
                column = column.cast(target.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InputError(f"cannot store as {target.type}: {exc}", column=target.name) from exc
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def plain_schema(schema: pa.Schema) -> pa.Schema:
    """`schema` with ``string_view`` fields as ``string``.

    Files written by a merge and the change feed come back as ``string_view``, which pyarrow's
    compute kernels neither compare with ``string`` nor filter (see PITFALLS); callers get one
    string type.
    """
    fields = [
        pa.field(f.name, pa.string(), f.nullable, f.metadata) if pa.types.is_string_view(f.type) else f
        for f in schema
    ]
    return pa.schema(fields, metadata=schema.metadata)


def plain_strings(table: pa.Table) -> pa.Table:
    """`table` cast to `plain_schema`."""
    target = plain_schema(table.schema)
    return table if target.equals(table.schema) else table.cast(target)
