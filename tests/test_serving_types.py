"""Answers that parse and types that fit: strict JSON (no NaN, exact decimals), nested values in CSV
and spreadsheets, and types a format cannot carry refused before the first byte."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from python_calamine import CalamineWorkbook

from pubdata.gateway.export import FORMATS, ExportJob
from pubdata.gateway.export_types import UnsupportedColumn

NAN, INF = float("nan"), float("inf")


def refuse_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def strict(text: str) -> Any:
    """`json.loads` that refuses NaN, Infinity and -Infinity, as JavaScript and Go do."""
    return json.loads(text, parse_constant=refuse_constant)


ODD = pa.table(
    {
        "比率": pa.array([0.5, NAN, INF, -INF, None], pa.float64()),
        "f32": pa.array([NAN, 1.5, None, -INF, 2.0], pa.float32()),
        "金额": pa.array(
            [Decimal("4200.50"), Decimal("0.10"), None, Decimal("-3.00"), Decimal("12345678901234567890.12")],
            pa.decimal128(38, 2),
        ),
        "readings": pa.array([[1.0, NAN], None, [], [INF], [2.5]], pa.list_(pa.float64())),
        "detail": pa.array(
            [
                {"x": NAN, "d": Decimal("1.5")},
                None,
                {"x": 1.0, "d": None},
                {"x": -INF, "d": Decimal("0")},
                None,
            ],
            pa.struct([("x", pa.float64()), ("d", pa.decimal128(5, 1))]),
        ),
    }
)
EXPECTED_ROWS = [
    [0.5, None, "4200.50", [1.0, None], {"x": None, "d": "1.5"}],
    [None, 1.5, "0.10", None, None],
    [None, None, None, [], {"x": 1.0, "d": None}],
    [None, None, "-3.00", [None], {"x": None, "d": "0.0"}],
    [None, 2.0, "12345678901234567890.12", [2.5], None],
]


def export(name: str, table: pa.Table = ODD, **options: Any) -> bytes:
    job = ExportJob(table.schema, table.to_batches(max_chunksize=2), **options)
    return b"".join(FORMATS[name].write(job))


def test_json_has_no_nan_or_infinity_and_decimals_are_exact_strings() -> None:
    answer = strict(export("json").decode("utf-8"))
    assert answer["rows"] == EXPECTED_ROWS
    types = {c["name"]: c["type"] for c in answer["columns"]}
    assert types["金额"] == "decimal128(38, 2)"  # the schema says the strings are decimals


def test_jsonl_lines_parse_strictly_with_the_same_values() -> None:
    lines = export("jsonl").decode("utf-8").splitlines()
    assert [list(strict(line).values()) for line in lines] == EXPECTED_ROWS


def test_csv_writes_lists_and_structs_as_json_text() -> None:
    rows = list(csv.reader(io.StringIO(export("csv").decode("utf-8-sig"))))
    assert rows[0] == ["比率", "f32", "金额", "readings", "detail"]
    assert strict(rows[1][3]) == [1.0, None] and strict(rows[1][4]) == {"x": None, "d": "1.5"}
    assert rows[2][3] == rows[2][4] == "" and rows[1][2] == "4200.50"


def test_a_spreadsheet_shows_nan_as_an_empty_cell_and_nested_values_as_json_text() -> None:
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(export("xlsx"))).get_sheet_by_index(0).to_python()
    assert sheet[1][0] == 0.5 and sheet[2][0] == "" and sheet[3][0] == ""
    assert strict(str(sheet[1][3])) == [1.0, None]


SPAN = pa.table({"span": pa.array([(1, 2, 3_000)], pa.month_day_nano_interval()), "n": [1]})
BLOB = pa.table({"raw": pa.array([b"\xab\x00"], pa.binary())})


@pytest.mark.parametrize(
    ("name", "table", "column", "what"),
    [
        ("csv", SPAN, "span", "an interval"),
        ("xlsx", SPAN, "span", "an interval"),
        ("parquet", SPAN, "span", "an interval"),
        ("csv", BLOB, "raw", "binary data"),
        ("xlsx", BLOB, "raw", "binary data"),
    ],
)
def test_a_type_the_format_cannot_carry_is_refused_by_its_schema(
    name: str, table: pa.Table, column: str, what: str
) -> None:
    with pytest.raises(UnsupportedColumn) as refused:
        FORMATS[name].check(table.schema)
    assert f"column {column} holds {what}, which the {name} format cannot carry" in str(refused.value)


@pytest.mark.parametrize("name", ["json", "jsonl", "arrow"])
def test_json_and_arrow_carry_intervals_and_binary(name: str) -> None:
    for table in (SPAN, BLOB):
        FORMATS[name].check(table.schema)
        assert export(name, table)


def test_parquet_carries_nested_values_but_not_an_interval_inside_them() -> None:
    FORMATS["parquet"].check(ODD.schema)
    inside = pa.schema([("spans", pa.list_(pa.month_day_nano_interval()))])
    with pytest.raises(UnsupportedColumn, match="column spans holds an interval"):
        FORMATS["parquet"].check(inside)


def test_timestamps_and_dates_are_unchanged_by_the_json_rules() -> None:
    table = pa.table({"at": pa.array([dt.datetime(2024, 5, 1, 8, 30)], pa.timestamp("us")), "n": [7]})
    assert strict(export("jsonl", table).decode()) == {"at": "2024-05-01 08:30:00", "n": 7}
