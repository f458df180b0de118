"""Text a spreadsheet would run as a formula (CSV injection): flagged on ingest, never refused.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return) is run as a
formula when the data is later exported to CSV and opened in Excel: ``=HYPERLINK(...)`` leaks, and
``-2+3+cmd|' /C calc'!A0`` starts a program. The data itself may be genuine (a note that starts with
a dash), so a row is never refused for it: the value is stored as sent and the row carries the
reason in its flags, for exports and the people who read the quality report.

Only free-text fields are looked at. Typed fields cannot hold such text (``-5`` in an integer field
is a number), fields with a validator are normalised and checked on their own (``+86 138…`` in a
mobile field loses its prefix), and a value that is only a signed number or a telephone number
(``-5``, ``+86 571 8888 8888``) calls nothing, so it is not flagged either.

Example:
    >>> [formula_like(v) for v in ("=1+1", "@SUM(A1)", "-2+3+cmd|' /C calc'!A0", "\\tx")]
    [True, True, True, True]
    >>> [formula_like(v) for v in ("-5", "+86 571 8888 8888", "备注：-", "a=b", "-", None)]
    [False, False, False, False, False, False]
"""

from __future__ import annotations

import re

from pubdata.catalog.classes import FieldType
from pubdata.db.models import CatalogField
from pubdata.ingest.normalise import clean, sql_string

#: The problem named in the row's flags and the quality report (the rule, then its Chinese name).
REASON = "formula-like text (疑似公式注入)"
_STARTS = "^[=+@-]"
_RAW_STARTS = "^[\\t\\r]"
_NUMBER_LIKE = "[+-]?[0-9][0-9 ().,-]*"


def applies(catalog_field: CatalogField) -> bool:
    """Free text: a string field without a validator."""
    return FieldType(catalog_field.data_type) is FieldType.STRING and not catalog_field.validator


def formula_sql(value: str, raw: str) -> str:
    """`REASON` or NULL, from the cleaned `value` and the `raw` text as the file had it.

    The first character is tested with `ascii` (its code point), which costs a tenth of a regular
    expression per value; the expression runs only for the few values that start like a formula.
    """
    starts = ", ".join(str(ord(c)) for c in "=+@-")
    return (
        f"CASE WHEN {value} IS NOT NULL AND (ascii({raw}) IN (9, 13) OR "
        f"(ascii({value}) IN ({starts}) AND NOT regexp_full_match({value}, {sql_string(_NUMBER_LIKE)}))) "
        f"THEN {sql_string(REASON)} END"
    )


def formula_like(raw: str | None) -> bool:
    """The oracle of `formula_sql` for a raw value (cleaned here as the pipeline cleans it)."""
    value = clean(raw)
    if raw is None or value is None:
        return False
    if re.match(_RAW_STARTS, raw):
        return True
    return bool(re.match(_STARTS, value)) and not re.fullmatch(_NUMBER_LIKE, value)
