"""Turn the strings agencies type into clean values: one DuckDB expression per column, plus its oracle.

Every rule exists twice: as a SQL expression builder that runs over whole Arrow batches (the hot path,
no Python per row) and as a scalar Python function with the same meaning, which the tests use as the
oracle (SQL == Python, checked by hypothesis). The SQL takes a fast path for values that need no
work (no surrounding blanks, no full-width characters, not a null marker), because most values in a
real file are already clean and `translate`/`trim` cost ten times a regex test.

Example:
    >>> clean("　１２３４ ")
    '1234'
    >>> clean("无") is None
    True
    >>> parse_date("2022年1月25日"), parse_date("20220125")
    (datetime.date(2022, 1, 25), datetime.date(2022, 1, 25))
    >>> parse_integer("1,234"), parse_boolean("是")
    (1234, True)
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Context, Decimal

import pyarrow as pa
import pyarrow.compute as pc

from pubdata.catalog.classes import FieldType

FULLWIDTH = "".join(chr(c) for c in range(0xFF10, 0xFF1A)) + "".join(
    chr(c) for c in (*range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B))
)
ASCII = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: Blanks trimmed from both ends; U+00A0 comes from spreadsheets, U+3000 from Chinese input methods.
TRIM_CHARS = " \t\n\r\f\v\u00a0\u3000"
#: What people write for "no value"; compared after trimming, case-sensitively.
# fmt: off
NULL_MARKERS: tuple[str, ...] = (
    "", "-", "--", "—", "——", "－", "/", "／", "无", "NULL", "null", "Null", "N/A", "n/a", "#N/A",
)
# fmt: on
TRUE_WORDS = ("是", "true", "t", "yes", "y", "1")
FALSE_WORDS = ("否", "false", "f", "no", "n", "0")

_TRANSLATE = str.maketrans(FULLWIDTH, ASCII)
_BLANK_CLASS = "[ \\t\\n\\r\\f\\v\\x{A0}\\x{3000}]"
_NEEDS_WORK = (
    f"^{_BLANK_CLASS}|{_BLANK_CLASS}$|[\\x{{FF10}}-\\x{{FF5A}}]"
    f"|^(?:{'|'.join(re.escape(m) for m in NULL_MARKERS)})$"
)
_INTEGER = r"[+-]?(?:[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)(?:\.0+)?"
_DECIMAL = r"[+-]?(?:(?:[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,2})?"
_ISO_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_MIDNIGHT = r"(?:[ T]0{1,2}:0{1,2}(?::0{1,2}(?:\.0+)?)?)?"
_ANY_DATE = (
    rf"([0-9]{{4}})[-/.年]([0-9]{{1,2}})[-/.月]([0-9]{{1,2}})日?{_MIDNIGHT}"
    rf"|([0-9]{{4}})([0-9]{{2}})([0-9]{{2}}){_MIDNIGHT}"
)
_DATE_PART = r"^([0-9]{4})[-/.年]([0-9]{1,2})[-/.月]([0-9]{1,2})日?"
_TIMESTAMP = (
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[ T](?:[01]?[0-9]|2[0-3]):[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)?"
)


#: UTF-8 that may give `clean` work wherever it occurs: blanks, and the U+FF00–U+FF7F block that
#: holds the full-width digits and letters.
_BLANK_BYTES = tuple(c.encode() for c in TRIM_CHARS if c.isascii())
_WIDE_BYTES = (*(c.encode() for c in TRIM_CHARS if not c.isascii()), b"\xef\xbc", b"\xef\xbd")
#: A value equal to a null marker holds the marker's first character.
_MARKER_STARTS = frozenset(m[0].encode() for m in NULL_MARKERS if m)
_ASCII_MARKER_STARTS = frozenset(b for b in _MARKER_STARTS if b.isascii())
_MARKER_BYTES = max(len(m.encode()) for m in NULL_MARKERS)
_MARKERS = pa.array(NULL_MARKERS, pa.string())


def column_bytes(values: pa.Array) -> bytes:
    """The UTF-8 of a string array's values back to back (what lies under nulls may come along)."""
    if len(values) == 0:
        return b""
    offsets = pa.Array.from_buffers(
        pa.int32(), len(values) + 1, [None, values.buffers()[1]], 0, values.offset
    )
    start, end = offsets[0].as_py(), offsets[len(values)].as_py()
    data = values.buffers()[2]
    return b"" if data is None else data[start:end].to_pybytes()


def clean_needed(values: pa.Array, data: bytes | None = None) -> bool:
    """False only when `clean` leaves every value of a string batch as it is.

    Most batches of a real file are clean throughout; the SQL skips `clean_sql` for them, which
    costs a few scans of the batch's bytes instead of a regular expression per value. `data` is
    `column_bytes(values)` when the caller has it already.
    """
    data = column_bytes(values) if data is None else data
    if any(b in data for b in _BLANK_BYTES):
        return True
    ascii_only = data.isascii()
    if not ascii_only and any(b in data for b in _WIDE_BYTES):
        return True
    lengths = pc.binary_length(values)
    shortest = pc.min(lengths).as_py()
    if shortest is None or shortest > _MARKER_BYTES:
        return False
    starts = _ASCII_MARKER_STARTS if ascii_only else _MARKER_STARTS
    if shortest > 0 and not any(b in data for b in starts):
        return False
    return bool(pc.any(pc.is_in(values, value_set=_MARKERS)).as_py())


def sql_string(text: str) -> str:
    """A SQL string literal for a constant of this module (never for user data)."""
    return "'" + text.replace("'", "''") + "'"


# --- SQL builders ---------------------------------------------------------------------------------


def clean_sql(expr: str) -> str:
    """Full-width digits/letters to ASCII, trim, null markers to NULL."""
    slow = f"trim(translate({expr}, {sql_string(FULLWIDTH)}, {sql_string(ASCII)}), {sql_string(TRIM_CHARS)})"
    markers = ", ".join(sql_string(m) for m in NULL_MARKERS)
    return (
        f"CASE WHEN regexp_matches({expr}, {sql_string(_NEEDS_WORK)}) "
        f"THEN CASE WHEN {slow} IN ({markers}) THEN NULL ELSE {slow} END ELSE {expr} END"
    )


def _without_commas(expr: str) -> str:
    # replace() copies every value; most numbers have no thousands separator to remove.
    return f"CASE WHEN contains({expr}, ',') THEN replace({expr}, ',', '') ELSE {expr} END"


def integer_sql(expr: str, sql_type: str = "BIGINT") -> str:
    return (
        f"CASE WHEN regexp_full_match({expr}, {sql_string(_INTEGER)}) "
        f"THEN TRY_CAST({_without_commas(expr)} AS {sql_type}) END"
    )


def decimal_sql(expr: str, sql_type: str = "DOUBLE") -> str:
    return (
        f"CASE WHEN regexp_full_match({expr}, {sql_string(_DECIMAL)}) "
        f"THEN TRY_CAST({_without_commas(expr)} AS {sql_type}) END"
    )


def date_sql(expr: str) -> str:
    canonical = f"regexp_replace({expr}, {sql_string('^(?:' + _ANY_DATE + ')$')}, '\\1\\4-\\2\\5-\\3\\6')"
    return (
        f"CASE WHEN starts_with({expr}, '0000') THEN NULL "
        f"WHEN regexp_full_match({expr}, {sql_string(_ISO_DATE)}) THEN TRY_CAST({expr} AS DATE) "
        f"WHEN regexp_full_match({expr}, {sql_string(_ANY_DATE)}) THEN TRY_CAST({canonical} AS DATE) END"
    )


def timestamp_sql(expr: str) -> str:
    canonical = (
        f"regexp_replace(regexp_replace({expr}, {sql_string(_DATE_PART)}, '\\1-\\2-\\3'), "
        "'^([0-9]{4})([0-9]{2})([0-9]{2})( |T|$)', '\\1-\\2-\\3\\4')"
    )
    return (
        f"CASE WHEN starts_with({expr}, '0000') THEN NULL "
        f"WHEN regexp_full_match({canonical}, {sql_string(_TIMESTAMP)}) "
        f"THEN TRY_CAST({canonical} AS TIMESTAMP) END"
    )


def boolean_sql(expr: str) -> str:
    true_words = ", ".join(sql_string(w) for w in TRUE_WORDS)
    false_words = ", ".join(sql_string(w) for w in FALSE_WORDS)
    lowered = f"lower({expr})"
    return f"CASE WHEN {lowered} IN ({true_words}) THEN TRUE WHEN {lowered} IN ({false_words}) THEN FALSE END"


def typed_sql(expr: str, data_type: FieldType, sql_type: str) -> str:
    """The typed value of a cleaned string, NULL when it does not parse as `data_type`."""
    builders: dict[FieldType, Callable[[str], str]] = {
        FieldType.INTEGER: lambda e: integer_sql(e, sql_type),
        FieldType.DECIMAL: lambda e: decimal_sql(e, sql_type),
        FieldType.DATE: date_sql,
        FieldType.TIMESTAMP: lambda e: f"TRY_CAST({timestamp_sql(e)} AS {sql_type})",
        FieldType.BOOLEAN: boolean_sql,
    }
    build = builders.get(data_type)
    return build(expr) if build else expr


# --- scalar oracles -------------------------------------------------------------------------------


def clean(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.translate(_TRANSLATE).strip(TRIM_CHARS)
    return None if text in NULL_MARKERS else text


def parse_integer(text: str) -> int | None:
    if not re.fullmatch(_INTEGER, text):
        return None
    return int(text.replace(",", "").split(".")[0])


def parse_decimal(text: str, precision: int = 38, scale: int = 6) -> Decimal | None:
    """The value as DECIMAL(precision, scale) holds it: rounded half away from zero, or None on overflow."""
    if not re.fullmatch(_DECIMAL, text):
        return None
    exact = Decimal(text.replace(",", ""))
    if abs(exact) >= Decimal(10) ** (precision - scale):
        return None
    value = exact.quantize(Decimal(1).scaleb(-scale), ROUND_HALF_UP, Context(prec=precision + 2))
    return None if abs(value) >= Decimal(10) ** (precision - scale) else value


def parse_date(text: str) -> dt.date | None:
    if re.fullmatch(_ISO_DATE, text):
        parts = text.split("-")
    elif match := re.fullmatch(_ANY_DATE, text):
        groups = match.groups()
        parts = list(groups[:3] if groups[0] else groups[3:])
    else:
        return None
    try:
        return dt.date(int(parts[0]), int(parts[1]), int(parts[2]))
    except (ValueError, TypeError):
        return None


def parse_timestamp(text: str) -> dt.datetime | None:
    canonical = re.sub(_DATE_PART, r"\1-\2-\3", text)
    canonical = re.sub(r"^([0-9]{4})([0-9]{2})([0-9]{2})( |T|$)", r"\1-\2-\3\4", canonical)
    if not re.fullmatch(_TIMESTAMP, canonical):
        return None
    date_part, _, time_part = canonical.replace("T", " ").partition(" ")
    year, month, day = (int(p) for p in date_part.split("-"))
    hms = [*time_part.split(":"), "0", "0"][:3] if time_part else ["0", "0", "0"]
    seconds, _, fraction = hms[2].partition(".")
    try:
        return dt.datetime(
            year,
            month,
            day,
            int(hms[0]),
            int(hms[1]),
            int(seconds),
            int(fraction.ljust(6, "0")) if fraction else 0,
        )
    except ValueError:
        return None


def parse_boolean(text: str) -> bool | None:
    lowered = text.lower()
    return True if lowered in TRUE_WORDS else False if lowered in FALSE_WORDS else None


#: Scalar parsers by field type: the oracle of `typed_sql`.
PARSERS: dict[FieldType, Callable[[str], object]] = {
    FieldType.INTEGER: parse_integer,
    FieldType.DECIMAL: parse_decimal,
    FieldType.DATE: parse_date,
    FieldType.TIMESTAMP: parse_timestamp,
    FieldType.BOOLEAN: parse_boolean,
}
