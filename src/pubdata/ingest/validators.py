"""Validators by name: what a catalogue field's `validator` refers to.

Each validator is data: a SQL builder that normalises a cleaned string, a SQL builder that gives a
problem code (or NULL) for the normalised value, and the scalar check from `pubdata.identifiers`
that the SQL must agree with. The pipeline runs only the SQL; the tests run both and compare. Add a
validator by adding an entry to `VALIDATORS`.

Example:
    >>> sorted(VALIDATORS)
    ['date', 'division_code', 'id_number', 'mobile', 'uscc']
    >>> VALIDATORS["mobile"].check("+86 138-0013-8000", None) is None
    True
    >>> VALIDATORS["id_number"].label
    'identity number'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pubdata import identifiers
from pubdata.divisions import divisions
from pubdata.errors import PubdataError
from pubdata.ingest.normalise import clean, date_sql, parse_date, sql_string
from pubdata.ingest.village_codes import BITS_VARIABLE, set_village_variables, village_index_sql
from pubdata.messages import text as sentence

#: DuckDB variables set by `prepare`. Code sets are bit strings indexed by the code's number: a
#: lookup is one `get_bit`, and unlike an IN-subquery (a join) it keeps the batch's row order.
ID_CODES_VARIABLE = "pubdata_id_issue_codes"
DIVISIONS_VARIABLE = "pubdata_division_codes"
TODAY_VARIABLE = "pubdata_today"

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


@dataclass(frozen=True)
class Validator:
    name: str
    #: How a problem is named to people: "invalid <label> (<problem code>)".
    label: str
    #: SQL giving the problem code (or NULL) of a normalised, non-NULL string expression; the second
    #: argument is the `derive_sql` value of the same row.
    problem_sql: Callable[[str, str], str]
    #: The scalar check of a raw value; the oracle the SQL is tested against.
    check: Callable[[str, dt.date | None], str | None]
    #: SQL turning a cleaned string into the form that is stored and validated.
    normalise_sql: Callable[[str], str] = lambda expr: expr
    #: A value the problem SQL uses several times, computed once per row as a column of its own:
    #: DuckDB shares common subexpressions, but not inside CASE branches.
    derive_sql: Callable[[str], str] | None = None
    #: False only when `normalise_sql` leaves every clean value of a string batch as it is, judged
    #: from the values and their UTF-8 (`normalise.column_bytes`); the SQL then skips that batch.
    normalise_needed: Callable[[pa.Array, bytes], bool] = lambda values, data: True

    def sql(self, expr: str) -> str:
        """The problem SQL of `expr` alone, the derived value inlined."""
        return self.problem_sql(expr, f"({self.derive_sql(expr)})" if self.derive_sql else "NULL")


def _id_number_body_sql(n: str) -> str:
    # The 17 digits as one integer: digits then come from integer arithmetic, ten times faster
    # than 17 substr() calls.
    return f"TRY_CAST(substr({n}, 1, 17) AS UBIGINT)"


def _id_number_sql(n: str, body: str) -> str:
    total = " + ".join(f"(({body} // {10 ** (16 - i)}) % 10) * {w}" for i, w in enumerate(_ID_WEIGHTS))
    part = [f"(({body} // {10**k}) % {m})::BIGINT" for k, m in ((7, 10000), (5, 100), (3, 100))]
    birth = f"TRY(make_date({', '.join(part)}))"
    return (
        f"CASE WHEN NOT regexp_full_match({n}, '[0-9]{{17}}[0-9X]') THEN 'format' "
        # The division code is the body's first six digits (once the format holds).
        f"WHEN get_bit(getvariable('{ID_CODES_VARIABLE}'), ({body} // 100000000000)::INTEGER) = 0 "
        "THEN 'division code' "
        f"WHEN coalesce(NOT {birth} BETWEEN DATE '1890-01-01' AND getvariable('{TODAY_VARIABLE}'), TRUE) "
        "THEN 'birth date' "
        f"WHEN substr('10X98765432', (({total}) % 11)::INTEGER + 1, 1) <> substr({n}, 18, 1) "
        "THEN 'check character' END"
    )


def _alphabet_sum(expr: str, alphabet: str, weights: tuple[int, ...], start: int) -> str:
    return " + ".join(
        f"(strpos({sql_string(alphabet)}, substr({expr}, {start + i}, 1)) - 1) * {w}"
        for i, w in enumerate(weights)
    )


def _uscc_sql(u: str, derived: str = "NULL") -> str:
    total = _alphabet_sum(u, _USCC_ALPHABET, _USCC_WEIGHTS, 1)
    org_total = _alphabet_sum(u, _ORG_ALPHABET, _ORG_WEIGHTS, 9)
    return (
        f"CASE WHEN NOT regexp_full_match({u}, '[0-9A-HJ-NPQRTUWXY]{{18}}') THEN 'format' "
        f"WHEN NOT regexp_full_match(substr({u}, 1, 8), '[0-9]{{8}}') "
        f"OR substr({sql_string(_USCC_ALPHABET)}, ((31 - ({total}) % 31) % 31)::INTEGER + 1, 1) "
        f"<> substr({u}, 18, 1) THEN 'check character' "
        # 11 - sum mod 11 is 1..11, written 1..9, X (10), 0 (11).
        f"WHEN substr('123456789X0', (11 - ({org_total}) % 11)::INTEGER, 1) <> substr({u}, 17, 1) "
        "THEN 'organisation code' END"
    )


def _org_code_problem(code: str) -> str | None:
    """GB 11714 check of the organisation code embedded in a credit code (stdnum skips it)."""
    total = sum(_ORG_ALPHABET.index(c) * w for c, w in zip(code[8:16], _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    expected = "0" if check == 11 else "X" if check == 10 else str(check)
    return None if code[16] == expected else "organisation code"


def _uscc_check(value: str, today: dt.date | None = None) -> str | None:
    return identifiers.uscc_problem(value) or _org_code_problem(identifiers.normalise_uscc(value))


def _date_check(value: str, today: dt.date | None = None) -> str | None:
    text = clean(value)
    return None if text is None or parse_date(text) is not None else "format"


def _never(values: pa.Array, data: bytes) -> bool:
    return False


_UPPER_ALNUM = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _not_upper_alnum(values: pa.Array, data: bytes) -> bool:
    return bool(data.translate(None, _UPPER_ALNUM))


def _upper_no_spaces(expr: str) -> str:
    fixed = f"upper(replace({expr}, ' ', ''))"
    return f"CASE WHEN regexp_full_match({expr}, '[0-9A-Z]+') THEN {expr} ELSE {fixed} END"


def _mobile_normalise_sql(expr: str) -> str:
    return (
        f"CASE WHEN regexp_full_match({expr}, '1[0-9]*') THEN {expr} ELSE "
        f"regexp_replace(regexp_replace(translate({expr}, '－＋', '-+'), "
        "'[\\s\\v\\x{A0}\\x{3000}\\-()]', '', 'g'), '^(?:\\+86|0086)', '') END"
    )


def _mobile_normalise_needed(values: pa.Array, data: bytes) -> bool:
    # Digits alone change only by losing a 0086 prefix.
    return bool(data.translate(None, b"0123456789")) or bool(pc.any(pc.starts_with(values, "0086")).as_py())


def _mobile_sql(m: str, derived: str = "NULL") -> str:
    return f"CASE WHEN NOT regexp_full_match({m}, '1[3-9][0-9]{{9}}') THEN 'format' END"


def _mobile_check(value: str, today: dt.date | None = None) -> str | None:
    return identifiers.mobile_problem(value)


@cache
def _division_prefixes() -> tuple[int, int, frozenset[int]]:
    """The shipped codes as 9-digit numbers (every code ends in 000) and their range."""
    codes = [d.code for d in divisions()]
    if any(not code.endswith("000") for code in codes):  # pragma: no cover - the shipped table
        raise PubdataError("the division table holds village codes; the division bit set cannot index them")
    prefixes = frozenset(int(code[:9]) for code in codes)
    return min(prefixes), max(prefixes), prefixes


def _division_number_sql(d: str) -> str:
    # The 12-digit number of a 6/9/12-digit code, from one cast (NULL when not a number).
    return f"TRY_CAST({d} AS BIGINT) * CASE length({d}) WHEN 6 THEN 1000000 WHEN 9 THEN 1000 ELSE 1 END"


def _division_code_sql(d: str, number: str) -> str:
    low, high, _ = _division_prefixes()
    sentinel = high - low + 1  # an index whose bit is 0: every code outside the table lands there
    index = (
        f"CASE WHEN {number} // 1000 - {low} BETWEEN 0 AND {high - low} "
        f"THEN {number} // 1000 - {low} ELSE {sentinel} END"
    )
    return (
        f"CASE WHEN NOT regexp_full_match({d}, '[0-9]{{6}}|[0-9]{{9}}|[0-9]{{12}}') THEN 'format' "
        f"WHEN {number} % 1000 <> 0 THEN CASE WHEN get_bit(getvariable('{BITS_VARIABLE}'), "
        f"({village_index_sql(number)})::INTEGER) = 0 THEN 'unknown division' END "
        f"WHEN get_bit(getvariable('{DIVISIONS_VARIABLE}'), ({index})::INTEGER) = 0 "
        "THEN 'unknown division' END"
    )


def _division_code_check(value: str, today: dt.date | None = None) -> str | None:
    return identifiers.division_code_problem(value)


def _division_pad_sql(d: str) -> str:
    """A 6- or 9-digit code as its 12-digit form (county + 000000, township + 000), so that one
    column holds one form and GROUP BY does not split a division in two; anything else stays as
    written and is checked (and flagged) as it came."""
    return f"CASE WHEN regexp_full_match({d}, '[0-9]{{6}}|[0-9]{{9}}') THEN rpad({d}, 12, '0') ELSE {d} END"


def _division_pad_needed(values: pa.Array, data: bytes) -> bool:
    lengths = pc.binary_length(values)
    return bool(pc.any(pc.is_in(lengths, value_set=pa.array([6, 9], lengths.type))).as_py())


def _date_sql(d: str, derived: str = "NULL") -> str:
    return f"CASE WHEN ({date_sql(d)}) IS NULL THEN 'format' END"


VALIDATORS: dict[str, Validator] = {
    "id_number": Validator(
        "id_number",
        "identity number",
        _id_number_sql,
        identifiers.id_number_problem,
        _upper_no_spaces,
        derive_sql=_id_number_body_sql,
        normalise_needed=_not_upper_alnum,
    ),
    "uscc": Validator(
        "uscc", "credit code", _uscc_sql, _uscc_check, _upper_no_spaces, normalise_needed=_not_upper_alnum
    ),
    "mobile": Validator(
        "mobile",
        "mobile number",
        _mobile_sql,
        _mobile_check,
        _mobile_normalise_sql,
        normalise_needed=_mobile_normalise_needed,
    ),
    "division_code": Validator(
        "division_code",
        "division code",
        _division_code_sql,
        _division_code_check,
        _division_pad_sql,
        derive_sql=_division_number_sql,
        normalise_needed=_division_pad_needed,
    ),
    "date": Validator("date", "date", _date_sql, _date_check, normalise_needed=_never),
}


def get_validator(name: str) -> Validator:
    try:
        return VALIDATORS[name]
    except KeyError:
        raise PubdataError(
            sentence(
                "unknown validator {name!r}; known: {known}", name=name, known=", ".join(sorted(VALIDATORS))
            )
        ) from None


def _bits(members: Iterable[int], size: int) -> str:
    chars = ["0"] * size
    for member in members:
        chars[member] = "1"
    return "".join(chars)


@cache
def _code_bits() -> tuple[str, str]:
    """The two code sets as bit strings; built once per process (a million characters)."""
    # The same set `identifiers.id_number_problem` accepts: every code that ever existed.
    issue_codes = {int(d.code[:6]) for d in divisions() if d.level != "township"}
    low, high, prefixes = _division_prefixes()
    return _bits(issue_codes, 1_000_000), _bits((p - low for p in prefixes), high - low + 2)


def prepare(
    con: duckdb.DuckDBPyConnection, today: dt.date | None = None, *, with_villages: bool = True
) -> None:
    """Set the code sets and today's date that the validators' SQL refers to.

    `with_villages` False skips reading the village table, for checks without a division code
    field (the division SQL must then not run: an unset variable would let every village pass).
    """
    issue_codes, division_codes = _code_bits()
    con.execute(f"SET VARIABLE {ID_CODES_VARIABLE} = ?::BIT", [issue_codes])
    con.execute(f"SET VARIABLE {DIVISIONS_VARIABLE} = ?::BIT", [division_codes])
    con.execute(f"SET VARIABLE {TODAY_VARIABLE} = ?::DATE", [today or dt.date.today()])
    if with_villages:
        set_village_variables(con)
