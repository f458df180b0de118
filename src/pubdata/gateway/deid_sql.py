"""SQL building blocks that every de-identification builder shares.

The builders must give the same answer on DuckDB now and on Spark later, so they only use functions
whose meaning sqlglot carries across both dialects with character (not byte) semantics: CASE,
SUBSTRING, LENGTH, REPEAT, CONCAT, STRPOS/LOCATE, REPLACE, LEAST, `||`. No regular expressions: a
backreference in a replacement transpiles silently wrong to Spark. A raw value must never reach an
error message either, so conversions that can fail are TRY_CASTs.

Example:
    >>> keep_ends(as_text("mobile"), head=3, tail=4, lengths=(11, 11)).sql("duckdb")[:56]
    'CASE WHEN LENGTH(CAST(mobile AS TEXT)) = 11 THEN CONCAT('
"""

from __future__ import annotations

from sqlglot import exp

#: A builder's input: a column expression over the raw relation, or a bare column name.
ColumnLike = exp.Expression | str


def as_text(column: ColumnLike) -> exp.Expression:
    """The value as a string, so that masks work on numeric columns too (a no-op on VARCHAR)."""
    node = exp.column(column) if isinstance(column, str) else column.copy()
    return exp.cast(node, exp.DataType.build("VARCHAR"))


def num(value: int) -> exp.Expression:
    return exp.Literal.number(value)


def text(value: str) -> exp.Expression:
    return exp.Literal.string(value)


def length(value: exp.Expression) -> exp.Expression:
    return exp.Length(this=value.copy())


def substring(
    value: exp.Expression, start: int | exp.Expression, count: int | exp.Expression
) -> exp.Expression:
    """Characters `start` (1-based) … `start + count - 1`."""
    start_node = num(start) if isinstance(start, int) else start
    count_node = num(count) if isinstance(count, int) else count
    return exp.Substring(this=value.copy(), start=start_node, length=count_node)


def stars(count: int | exp.Expression) -> exp.Expression:
    """``'*' * count`` computed in the engine (count may depend on the value)."""
    return exp.Repeat(this=text("*"), times=num(count) if isinstance(count, int) else count)


def concat(*parts: exp.Expression) -> exp.Expression:
    """`a || b || …`: NULL in any part gives NULL, as the masks want."""
    result = parts[0]
    for part in parts[1:]:
        result = exp.DPipe(this=result, expression=part, safe=True)
    return result


def concat_present(*parts: exp.Expression) -> exp.Expression:
    """CONCAT for parts known not to be NULL (inside a CASE branch that tested the value).

    DuckDB's variadic CONCAT builds one string where a chain of `||` builds one per step, which
    makes a mask about a third cheaper; it treats NULL as empty, hence only for present parts.
    """
    return exp.Concat(expressions=list(parts), safe=True, coalesce=True)


def position(value: exp.Expression, needle: str) -> exp.Expression:
    """1-based character position of the first `needle`, NULL when absent (so LEAST skips it)."""
    return exp.Nullif(this=exp.StrPosition(this=value.copy(), substr=text(needle)), expression=num(0))


def earliest(*positions: exp.Expression) -> exp.Expression:
    """The smallest non-NULL position (LEAST skips NULLs on DuckDB and Spark alike)."""
    if len(positions) == 1:
        return positions[0]
    # Without ignore_nulls sqlglot guards DuckDB's LEAST to return NULL when any argument is NULL.
    return exp.Least(this=positions[0], expressions=list(positions[1:]), ignore_nulls=True)


def fully_masked(value: exp.Expression) -> exp.Expression:
    """One star per character: the length stays visible, the content never does."""
    return stars(length(value))


def keep_ends(value: exp.Expression, *, head: int, tail: int, lengths: tuple[int, int]) -> exp.Expression:
    """Keep `head` leading and `tail` trailing characters of values whose length is within `lengths`
    (inclusive) and star the middle; star every character of any other value."""
    size = length(value)
    fixed = lengths[0] == lengths[1]
    if fixed:
        middle = text("*" * (lengths[0] - head - tail))
        accepted: exp.Expression = exp.EQ(this=size.copy(), expression=num(lengths[0]))
    else:
        middle = stars(exp.Sub(this=size.copy(), expression=num(head + tail)))
        accepted = exp.Between(this=size.copy(), low=num(lengths[0]), high=num(lengths[1]))
    kept = [substring(value, 1, head), middle]
    if tail:
        start = num(lengths[0] - tail + 1) if fixed else exp.Sub(this=size.copy(), expression=num(tail - 1))
        kept.append(substring(value, start, tail))
    return exp.Case(ifs=[exp.If(this=accepted, true=concat_present(*kept))], default=fully_masked(value))
