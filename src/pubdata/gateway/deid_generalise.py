"""Generalisation (GB/T 37964 泛化): replace a precise value by the class it falls in.

A birth date becomes a month or a year, a birth date or identity number becomes an age bucket, a
division code becomes its county or city. Values that cannot be read (a malformed date, an identity
number of the wrong length) give NULL, never an error: an error message would carry the raw value.

Example:
    >>> import duckdb
    >>> sql = generalise_date(exp.Literal.string("2021-03-15"), granularity="year").sql("duckdb")
    >>> duckdb.sql("SELECT " + sql).fetchall()
    [('2021',)]
    >>> sql = age_bucket(exp.Literal.string("33010219800101123X"), source="id_number", reference="2024-06-30")
    >>> duckdb.sql("SELECT " + sql.sql("duckdb")).fetchall()
    [('40-49',)]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from itertools import pairwise
from typing import Literal

from sqlglot import exp

from pubdata.divisions import PREFIX_LENGTH
from pubdata.errors import InputError
from pubdata.gateway.deid_sql import ColumnLike, as_text, concat, length, num, substring, text
from pubdata.messages import text as sentence

#: Characters of the ISO date string that each granularity keeps.
DATE_PREFIX: dict[str, int] = {"year": 4, "month": 7}

#: Lower bounds of the default age buckets: 0-17, 18-29, …, 60-69, 70+.
DEFAULT_AGE_BOUNDS: tuple[int, ...] = (18, 30, 40, 50, 60, 70)


def _raw(column: ColumnLike) -> exp.Expression:
    return exp.column(column) if isinstance(column, str) else column.copy()


def _as_date(node: exp.Expression) -> exp.Expression:
    return exp.TryCast(this=node, to=exp.DataType.build("DATE"))


def generalise_date(column: ColumnLike, granularity: Literal["month", "year"] = "month") -> exp.Expression:
    """`2021-03` (month) or `2021` (year) from a date, timestamp or ISO date string."""
    if granularity not in DATE_PREFIX:
        raise InputError(
            sentence(
                "granularity must be one of {known}, not {granularity!r}",
                known=", ".join(DATE_PREFIX),
                granularity=granularity,
            )
        )
    iso = exp.cast(_as_date(_raw(column)), exp.DataType.build("VARCHAR"))
    return substring(iso, 1, DATE_PREFIX[granularity])


def _birth_date_from_id_number(column: ColumnLike) -> exp.Expression:
    """The birth date in characters 7–14 of an 18-character number, NULL when it is not a date."""
    value = as_text(column)
    iso = concat(
        substring(value, 7, 4), text("-"), substring(value, 11, 2), text("-"), substring(value, 13, 2)
    )
    return exp.Case(
        ifs=[exp.If(this=exp.EQ(this=length(value), expression=num(18)), true=_as_date(iso))],
    )


def _reference(reference: dt.date | str | None) -> dt.date:
    if reference is None:
        return dt.date.today()
    if isinstance(reference, dt.date):
        return reference
    try:
        return dt.date.fromisoformat(reference)
    except ValueError as exc:
        raise InputError(
            sentence("reference must be an ISO date (YYYY-MM-DD), not {reference!r}", reference=reference)
        ) from exc


def _bucket_labels(bounds: Sequence[int]) -> list[str]:
    if not bounds or bounds[0] <= 0 or any(b <= a for a, b in pairwise(bounds)):
        raise InputError(
            sentence(
                "age bounds must be increasing positive whole years, not {bounds!r}", bounds=list(bounds)
            )
        )
    lows = [0, *bounds]
    return [f"{lo}-{hi - 1}" for lo, hi in zip(lows, bounds, strict=False)] + [f"{bounds[-1]}+"]


def age_bucket(
    column: ColumnLike,
    source: Literal["birth_date", "id_number"] = "birth_date",
    reference: dt.date | str | None = None,
    bounds: Sequence[int] = DEFAULT_AGE_BOUNDS,
) -> exp.Expression:
    """`18-29`, `30-39`, … `70+`: completed years at `reference` (default: the day the policy is built).

    The bucket is chosen on ``YYYYMMDD`` integers — ``reference - birth < 10000 * k`` exactly when
    the age is below k — so no date arithmetic differs between engines. Births after `reference`
    give NULL.
    """
    labels = _bucket_labels(bounds)
    if source == "id_number":
        born = _birth_date_from_id_number(column)
    elif source == "birth_date":
        born = _as_date(_raw(column))
    else:
        raise InputError(sentence("source must be birth_date or id_number, not {source!r}", source=source))
    on = _reference(reference)
    yyyymmdd = exp.Add(
        this=exp.Add(
            this=exp.Mul(this=exp.Year(this=born.copy()), expression=num(10000)),
            expression=exp.Mul(this=exp.Month(this=born.copy()), expression=num(100)),
        ),
        expression=exp.Day(this=born.copy()),
    )
    gap = exp.Sub(this=num(on.year * 10000 + on.month * 100 + on.day), expression=exp.paren(yyyymmdd))
    ifs = [exp.If(this=exp.LT(this=gap.copy(), expression=num(0)), true=exp.Null())]
    ifs += [
        exp.If(this=exp.LT(this=gap.copy(), expression=num(bound * 10000)), true=text(label))
        for bound, label in zip(bounds, labels, strict=False)
    ]
    ifs.append(
        exp.If(this=exp.GTE(this=gap.copy(), expression=num(bounds[-1] * 10000)), true=text(labels[-1]))
    )
    return exp.Case(ifs=ifs)


def generalise_division(
    column: ColumnLike, level: Literal["city", "county", "township"] = "county"
) -> exp.Expression:
    """`330402000000` (county) or `330400000000` (city) from any code; the length is kept, so a
    6-digit county code becomes `330400` at city level."""
    if level not in ("city", "county", "township"):
        raise InputError(sentence("level must be city, county or township, not {level!r}", level=level))
    value = as_text(column)
    keep = PREFIX_LENGTH[level]
    # REPEAT rather than RPAD: DuckDB's RPAD takes no BIGINT count, and REPEAT of a negative count
    # is empty on both engines, which leaves codes shorter than the prefix as they are.
    zeros = exp.Repeat(this=text("0"), times=exp.Sub(this=length(value), expression=num(keep)))
    return concat(substring(value, 1, keep), zeros)
