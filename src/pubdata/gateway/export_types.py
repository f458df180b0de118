"""Which column types each export format can write, decided from the schema before the first byte.

A format that cannot hold a column's type used to fail inside its writer: after the ``200`` and the
headers had gone out, so a CSV answer was a lone ``# error: …`` line and a Parquet answer zero bytes.
The engine gives the result's schema before its first batch, so the gateway now asks the format
(`ExportFormat.refuses`) first and answers a clean ``400 unsupported_column`` naming the column (by
its name in the answer) and the format. Where a clear conversion exists, the writer converts instead:

====================  ===================================  ==========================================
format                written as converted                 refused
====================  ===================================  ==========================================
``json``, ``jsonl``   lists, structs, maps as JSON          nothing (see `json_cells` for NaN, decimals)
``arrow``             everything as it is                   nothing
``parquet``           lists, structs, maps as Parquet's     intervals, unions (Parquet's writer has no
                                                            kind for them)
``csv``, ``xlsx``     lists, structs, maps as JSON text     intervals (a month has no fixed length, so
                                                            no text a spreadsheet reads), binary data,
                                                            unions, engine-specific types
====================  ===================================  ==========================================

A refused column is converted in the query by its sender, who knows what it means:
``CAST(x AS VARCHAR)``, ``epoch(x)`` for an interval's seconds, ``hex(x)`` for binary data.

Example:
    >>> import pyarrow as pa
    >>> refused_in_text(pa.month_day_nano_interval())
    'an interval'
    >>> refused_in_text(pa.list_(pa.int32())) is None
    True
    >>> nested(pa.struct([("a", pa.int8())]))
    True
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from pubdata.errors import InputError
from pubdata.messages import Text, text

#: What a type check answers: a short name of the refused kind, or None when the format takes it.
TypeCheck = Callable[[pa.DataType], Text | None]


class UnsupportedColumn(InputError):
    """A column of the answer has a type the asked format cannot carry (API: 400 ``unsupported_column``)."""

    def __init__(self, column: str, format_name: str, what: Text) -> None:
        super().__init__(
            text(
                "column {column} holds {what}, which the {format} format cannot carry: convert it in "
                "the query (for example CAST({column} AS VARCHAR)) or choose arrow or jsonl",
                column=column,
                what=what,
                format=format_name,
            )
        )
        self.format = format_name


def nested(kind: pa.DataType) -> bool:
    """Lists, structs and maps: values made of values."""
    return bool(
        pa.types.is_list(kind)
        or pa.types.is_large_list(kind)
        or pa.types.is_fixed_size_list(kind)
        or pa.types.is_list_view(kind)
        or pa.types.is_large_list_view(kind)
        or pa.types.is_struct(kind)
        or pa.types.is_map(kind)
    )


def _children(kind: pa.DataType) -> list[pa.DataType]:
    if pa.types.is_map(kind):
        return [kind.key_type, kind.item_type]
    if pa.types.is_dictionary(kind):
        return [kind.value_type]
    if nested(kind):
        return [kind.field(i).type for i in range(kind.num_fields)]
    return []


def _first(kind: pa.DataType, check: TypeCheck) -> Text | None:
    """`check` of `kind` or, for nested types, of the first refused type inside it."""
    found = check(kind)
    for child in _children(kind):
        found = found or _first(child, check)
    return found


def _binary(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_binary_view(kind)
        or pa.types.is_fixed_size_binary(kind)
    )


def _parquet_kind(kind: pa.DataType) -> Text | None:
    if pa.types.is_interval(kind):
        return text("an interval")
    if pa.types.is_union(kind):
        return text("a union")
    return None


def _text_kind(kind: pa.DataType) -> Text | None:
    if isinstance(kind, pa.BaseExtensionType):
        return text("an engine-specific type")
    if _binary(kind):
        return text("binary data")
    return _parquet_kind(kind)


def refused_in_parquet(kind: pa.DataType) -> Text | None:
    """Why Parquet cannot write `kind` (at any depth), or None."""
    return _first(kind, _parquet_kind)


def refused_in_text(kind: pa.DataType) -> Text | None:
    """Why CSV or a spreadsheet cannot write `kind`, or None. Nested values become JSON text, which
    DuckDB writes for every type, so only the top level is checked."""
    return None if nested(kind) else _text_kind(kind)


def check_schema(schema: pa.Schema, format_name: str, refuses: TypeCheck) -> None:
    """Raise `UnsupportedColumn` for the first column of `schema` that `refuses` turns down."""
    for field in schema:
        what = refuses(field.type)
        if what is not None:
            raise UnsupportedColumn(field.name, format_name, what)
