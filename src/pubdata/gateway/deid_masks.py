"""Masking (GB/T 37964 屏蔽): keep the part of a value that groups people, star the part that names one.

Each builder takes the raw column and returns a sqlglot expression of the masked value. NULL stays
NULL; a value of an unexpected length is starred completely rather than cut in a place that might
leave it readable.

Example:
    >>> import duckdb
    >>> masked = mask_id_number(exp.Literal.string("33010219800101123X"))
    >>> duckdb.sql("SELECT " + masked.sql("duckdb")).fetchall()
    [('330102********123X',)]
    >>> duckdb.sql("SELECT " + mask_name(exp.Literal.string("欧阳娜娜")).sql("duckdb")).fetchall()
    [('欧阳**',)]
"""

from __future__ import annotations

from functools import cache

from sqlglot import exp

from pubdata.divisions import divisions
from pubdata.gateway.deid_sql import (
    ColumnLike,
    as_text,
    concat_present,
    earliest,
    fully_masked,
    keep_ends,
    length,
    num,
    position,
    stars,
    substring,
    text,
)

#: Two-character surnames common enough to matter (百家姓 复姓); others keep one character.
COMPOUND_SURNAMES: tuple[str, ...] = (
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
    "宇文", "司徒", "夏侯", "轩辕", "令狐", "钟离", "南宫", "端木", "独孤", "西门",
    "呼延", "赫连", "申屠", "万俟", "司空", "澹台", "闻人", "太史", "百里", "第五",
)  # fmt: skip

#: Township tokens: an address is cut after the first of these (街道 before the 3 it contains).
TOWNSHIP_TOKENS: tuple[str, ...] = ("街道", "镇", "乡")

#: County-level tokens, the fallback cut when an address names no township.
COUNTY_TOKENS: tuple[str, ...] = ("区", "县")

#: Words ending in 区 that are not districts; they must not be taken for the county.
NOT_COUNTY_WORDS: tuple[str, ...] = ("小区", "社区", "园区", "校区", "景区", "厂区", "街区", "营区", "开发区")


def mask_id_number(column: ColumnLike) -> exp.Expression:
    """`330102********123X`: the issuing county (6) and the last 4 stay; other lengths are all stars."""
    return keep_ends(as_text(column), head=6, tail=4, lengths=(18, 18))


def mask_mobile(column: ColumnLike) -> exp.Expression:
    """`138****8000`: the carrier prefix (3) and the last 4 stay; other lengths are all stars."""
    return keep_ends(as_text(column), head=3, tail=4, lengths=(11, 11))


def mask_bank_card(column: ColumnLike) -> exp.Expression:
    """`622202*********1234`: the issuer (BIN, 6) and the last 4 of a 12–19 digit card stay."""
    return keep_ends(as_text(column), head=6, tail=4, lengths=(12, 19))


def mask_uscc(column: ColumnLike) -> exp.Expression:
    """`91330402**********`: registration authority, organisation type and county stay.

    Those eight characters group enterprises (every company registered in one county shares them)
    while the organisation code and check character that single one out are starred. Codes of sole
    traders can name a person, hence a mask at all.
    """
    return keep_ends(as_text(column), head=8, tail=0, lengths=(18, 18))


def mask_name(column: ColumnLike) -> exp.Expression:
    """`张*`, `欧阳**`: the surname stays, one star per other character; a single character is starred."""
    value = as_text(column)
    size = length(value)
    compound = exp.In(this=substring(value, 1, 2), expressions=[text(s) for s in COMPOUND_SURNAMES])
    return exp.Case(
        ifs=[
            exp.If(
                this=exp.and_(exp.GTE(this=size.copy(), expression=num(3)), compound),
                true=concat_present(
                    substring(value, 1, 2), stars(exp.Sub(this=size.copy(), expression=num(2)))
                ),
            ),
            exp.If(
                this=exp.GTE(this=size.copy(), expression=num(2)),
                true=concat_present(
                    substring(value, 1, 1), stars(exp.Sub(this=size.copy(), expression=num(1)))
                ),
            ),
        ],
        default=fully_masked(value),
    )


@cache
def _division_names_with_township_tokens() -> tuple[str, ...]:
    """Names like 镇海区 and 桐乡市 that would otherwise be read as a township."""
    return tuple(
        sorted(
            {
                d.name
                for d in divisions()
                if d.level != "township" and any(t in d.name for t in TOWNSHIP_TOKENS)
            }
        )
    )


def _blank(value: exp.Expression, words: tuple[str, ...]) -> exp.Expression:
    """`value` with each word replaced by as many placeholders, so positions still match `value`."""
    blanked = value.copy()
    for word in words:
        blanked = exp.Replace(this=blanked, expression=text(word), replacement=text("#" * len(word)))
    return blanked


def _end_of(value: exp.Expression, token: str) -> exp.Expression:
    """Position of the last character of the first `token`, or NULL."""
    found = position(value, token)
    return found if len(token) == 1 else exp.Add(this=found, expression=num(len(token) - 1))


def mask_address(column: ColumnLike) -> exp.Expression:
    """`浙江省嘉兴市南湖区凤桥镇`: cut after the first 街道/镇/乡, else after the first 区/县, else after
    the first 市; an address with none of them is all stars."""
    value = as_text(column)
    for_township = _blank(value, _division_names_with_township_tokens())
    for_county = _blank(value, NOT_COUNTY_WORDS)
    township = earliest(*(_end_of(for_township, t) for t in TOWNSHIP_TOKENS))
    county = earliest(*(_end_of(for_county, t) for t in COUNTY_TOKENS))
    city = _end_of(value, "市")
    return exp.Case(
        ifs=[
            exp.If(
                this=exp.Not(this=exp.Is(this=cut, expression=exp.Null())),
                true=substring(value, 1, cut.copy()),
            )
            for cut in (township, county, city)
        ],
        default=fully_masked(value),
    )


def suppress(column: ColumnLike) -> exp.Expression:
    """NULL of the column's own type, so the result schema does not change with the grant."""
    node = exp.column(column) if isinstance(column, str) else column.copy()
    return exp.Case(ifs=[exp.If(this=exp.false(), true=node)])
