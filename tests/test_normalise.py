"""Normalisation and column mapping: every rule, and the SQL agreeing with its scalar oracle."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import cache
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pubdata.catalog.classes import FieldType
from pubdata.db.models import CatalogField
from pubdata.errors import InputError
from pubdata.ingest.mapping import header_key, map_columns
from pubdata.ingest.normalise import (
    NULL_MARKERS,
    PARSERS,
    clean,
    clean_sql,
    parse_boolean,
    parse_date,
    parse_decimal,
    parse_integer,
    parse_timestamp,
    typed_sql,
)

SQL_TYPES = {
    FieldType.INTEGER: "BIGINT",
    FieldType.DECIMAL: "DECIMAL(38, 6)",
    FieldType.DATE: "DATE",
    FieldType.TIMESTAMP: "TIMESTAMP",
    FieldType.BOOLEAN: "BOOLEAN",
}


@cache
def _connection() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def run_sql(expression: str, values: list[str | None]) -> list[Any]:
    con = _connection()
    con.register("raw_values", pa.table({"v": pa.array(values, pa.string())}))
    rows = con.sql(f"SELECT {expression} FROM raw_values").fetchall()
    con.unregister("raw_values")
    return [row[0] for row in rows]


def sql_clean(values: list[str | None]) -> list[str | None]:
    return run_sql(clean_sql("v"), values)


def sql_typed(data_type: FieldType, values: list[str]) -> list[Any]:
    return run_sql(typed_sql("v", data_type, SQL_TYPES[data_type]), values)


# --- examples ------------------------------------------------------------------------------------


def test_clean_fullwidth_trim_and_null_markers() -> None:
    cases = {
        "１２３４": "1234",
        "ＡＢｃ１": "ABc1",
        "  张三 ": "张三",
        "\u3000杭州\u00a0": "杭州",
        "（集团）": "（集团）",  # full-width punctuation in names is kept
        "a b": "a b",
        **dict.fromkeys(NULL_MARKERS),
        " — ": None,
        "\tNULL ": None,
        "N/A": None,
        "null": None,
    }
    values = list(cases)
    assert [clean(v) for v in values] == list(cases.values())
    assert sql_clean(values) == list(cases.values())
    assert sql_clean([None]) == [None]


def test_dates_in_the_formats_agencies_use() -> None:
    expected = dt.date(2022, 1, 25)
    formats = [
        "2022年1月25日",
        "2022年01月25日",
        "2022/1/25",
        "2022-1-25",
        "2022.1.25",
        "20220125",
        "2022-01-25",
        "2022-01-25 00:00:00",
        "2022/01/25 0:00",
        "2022-01-25T00:00:00.000",
    ]
    assert [parse_date(v) for v in formats] == [expected] * len(formats)
    assert sql_typed(FieldType.DATE, formats) == [expected] * len(formats)
    bad = ["2022-02-30", "2021-02-29", "25/01/2022", "2022-01-25 08:30:00", "0000-01-01", "2022-13-01", "x"]
    assert [parse_date(v) for v in bad] == [None] * len(bad)
    assert sql_typed(FieldType.DATE, bad) == [None] * len(bad)
    assert parse_date("2024-02-29") == dt.date(2024, 2, 29)


def test_integers_decimals_and_booleans() -> None:
    integers = {"1,234": 1234, "1234": 1234, "-12": -12, "+7": 7, "12.0": 12, "1,234,567": 1234567}
    assert [parse_integer(v) for v in integers] == list(integers.values())
    assert sql_typed(FieldType.INTEGER, list(integers)) == list(integers.values())
    not_integers = ["1.5", "1,23", "12,3456", "1e3", "0x10", "1_000", "", "--1"]
    assert [parse_integer(v) for v in not_integers] == [None] * len(not_integers)
    assert sql_typed(FieldType.INTEGER, not_integers) == [None] * len(not_integers)
    # Full-width digits become ASCII in the cleaning step that runs before typing.
    assert run_sql(
        typed_sql(f"({clean_sql('v')})", FieldType.INTEGER, "BIGINT"), ["１，２３４", "１２３４"]
    ) == [
        None,
        1234,
    ]
    decimals = {
        "1,234.50": Decimal("1234.5"),
        ".5": Decimal("0.5"),
        "-3": Decimal(-3),
        "1.5e3": Decimal(1500),
    }
    assert [parse_decimal(v) for v in decimals] == list(decimals.values())
    assert sql_typed(FieldType.DECIMAL, list(decimals)) == list(decimals.values())
    assert sql_typed(FieldType.DECIMAL, ["1.2.3", "abc", "1,23.4"]) == [None, None, None]
    booleans = {"是": True, "否": False, "true": True, "FALSE": False, "1": True, "0": False, "Y": True}
    assert [parse_boolean(v) for v in booleans] == list(booleans.values())
    assert sql_typed(FieldType.BOOLEAN, list(booleans)) == list(booleans.values())
    assert sql_typed(FieldType.BOOLEAN, ["maybe", "2"]) == [None, None]


def test_timestamps() -> None:
    cases = {
        "2022-01-25 08:30": dt.datetime(2022, 1, 25, 8, 30),
        "2022/1/25 8:30:15": dt.datetime(2022, 1, 25, 8, 30, 15),
        "2022年1月25日 08:30:15.5": dt.datetime(2022, 1, 25, 8, 30, 15, 500000),
        "20220125 083015": None,
        "2022-01-25": dt.datetime(2022, 1, 25),
        "2022-01-25 24:00": None,
        "2022-01-25 23:60": None,
    }
    assert [parse_timestamp(v) for v in cases] == list(cases.values())
    assert sql_typed(FieldType.TIMESTAMP, list(cases)) == list(cases.values())


# --- properties ----------------------------------------------------------------------------------

NOISY_TEXT = st.text(st.sampled_from(list("ab1２Ａ -—/无NUL\t\u3000\u00a0张")), max_size=8)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(NOISY_TEXT, st.sampled_from(NULL_MARKERS), st.none()), min_size=1, max_size=40))
def test_clean_sql_equals_python(values: list[str | None]) -> None:
    assert sql_clean(values) == [clean(v) for v in values]


DATE_LIKE = st.builds(
    lambda y, m, d, seps, tail: f"{y:04d}{seps[0]}{m}{seps[1]}{d}{seps[2]}{tail}",
    st.integers(0, 9999),
    st.sampled_from(["1", "01", "2", "12", "13", "0", "00"]),
    st.sampled_from(["1", "01", "29", "30", "31", "32", "0"]),
    st.sampled_from(["--_", "//_", ".._", "年月日", "年月_", "-/_", "___"])
    .map(lambda s: s.replace("_", " "))
    .map(lambda s: [c.strip() for c in s]),
    st.sampled_from(["", " 00:00:00", "T00:00", " 08:30", " 0:00:00.000", " 23:59:59.5"]),
)


@settings(max_examples=120, deadline=None)
@given(
    st.lists(st.one_of(DATE_LIKE, st.text("0123456789-/.年月日 :T", max_size=20)), min_size=1, max_size=40)
)
def test_date_and_timestamp_sql_equal_python(values: list[str]) -> None:
    assert sql_typed(FieldType.DATE, values) == [parse_date(v) for v in values]
    assert sql_typed(FieldType.TIMESTAMP, values) == [parse_timestamp(v) for v in values]


NUMBER_LIKE = st.one_of(
    st.integers(-(10**15), 10**15).map(lambda n: f"{n:,}"),
    st.integers(-(10**15), 10**15).map(str),
    st.decimals(-(10**12), 10**12, places=3, allow_nan=False).map(str),
    st.text("0123456789,.+-e", max_size=12),
)


@settings(max_examples=120, deadline=None)
@given(st.lists(NUMBER_LIKE, min_size=1, max_size=40))
def test_numbers_sql_equal_python(values: list[str]) -> None:
    assert sql_typed(FieldType.INTEGER, values) == [parse_integer(v) for v in values]
    assert sql_typed(FieldType.DECIMAL, values) == [parse_decimal(v) for v in values]


@given(
    st.lists(st.sampled_from(["是", "否", "true", "True", "F", "yes", "No", "1", "0", "2", "x"]), min_size=1)
)
def test_boolean_sql_equals_python(values: list[str]) -> None:
    assert sql_typed(FieldType.BOOLEAN, values) == [PARSERS[FieldType.BOOLEAN](v) for v in values]


# --- column mapping ------------------------------------------------------------------------------


def fields() -> list[CatalogField]:
    return [
        CatalogField(name="id_number", title="身份证号", aliases=["公民身份号码"], required=True),
        CatalogField(name="name", title="姓名", aliases=[]),
        CatalogField(name="mobile", title="手机号码", aliases=["联系电话"]),
    ]


def test_header_key_ignores_case_blanks_and_fullwidth() -> None:
    assert header_key(" 身份证 号 ") == header_key("身份证号")
    assert header_key("ＩＤ＿Ｎｕｍｂｅｒ") == "id_number"


def test_columns_map_by_name_title_or_alias() -> None:
    mapping = map_columns(["公民身份号码", " 姓 名 ", "MOBILE", "备注"], fields(), "a.csv")
    assert [(m.field.name, m.source_index) for m in mapping.fields] == [
        ("id_number", 0),
        ("name", 1),
        ("mobile", 2),
    ]
    assert mapping.unmapped == ["备注"]
    assert mapping.missing == []


def test_repeated_and_missing_optional_columns_are_reported() -> None:
    mapping = map_columns(["身份证号", "id_number"], fields(), "a.csv")
    assert mapping.duplicates == ["id_number"]
    assert mapping.missing == ["name", "mobile"]


def test_required_field_without_column_names_file_and_field() -> None:
    with pytest.raises(InputError, match=r"file a\.csv.*required field id_number \(身份证号\) has no column"):
        map_columns(["姓名", "手机号码"], fields(), "a.csv")


def test_header_matching_nothing_lists_expected_names() -> None:
    with pytest.raises(
        InputError, match=r"file b\.csv.*expected columns: id_number \(身份证号\), name \(姓名\)"
    ):
        map_columns(["col1", "col2"], fields(), "b.csv")
