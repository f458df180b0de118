"""Parquet and JSON Lines reading, and choosing the reader from the file's content."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pubdata.errors import InputError
from pubdata.ingest.readers import CsvSource, JsonLinesSource, ParquetSource, open_source, sniff_format
from pubdata.ingest.source import TabularSource


def rows_of(source: TabularSource, batch_rows: int = 3) -> list[tuple[int, dict[str, str | None]]]:
    out: list[tuple[int, dict[str, str | None]]] = []
    for first, batch in source.batches(batch_rows):
        assert batch.num_rows <= batch_rows
        assert batch.schema.names == source.info.columns
        assert all(pa.types.is_string(t) or pa.types.is_large_string(t) for t in batch.schema.types)
        out.extend((first + i, r) for i, r in enumerate(batch.to_pylist()))
    return out


def test_parquet_values_become_the_text_a_person_writes(tmp_path: Path) -> None:
    table = pa.table(
        {
            "id": pa.array([1, 2, None], pa.int64()),
            "amount": pa.array([3.0, 0.1, 1e20]),
            "founded": pa.array([dt.date(2021, 3, 1), None, dt.date(1999, 12, 31)]),
            "at": pa.array(
                [dt.datetime(2021, 3, 1, 8, 30), dt.datetime(2021, 3, 2), None], pa.timestamp("us")
            ),
            "capital": pa.array([decimal.Decimal("12.30"), None, decimal.Decimal("0.05")]),
            "ok": pa.array([True, False, None]),
            "town": pa.array(["南湖区", "平湖市", "南湖区"]).dictionary_encode(),
        }
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=2)
    source = open_source(path)
    assert isinstance(source, ParquetSource)
    assert source.info.header_row == 0
    rows = rows_of(source, 2)
    assert [n for n, _ in rows] == [1, 2, 3]
    assert rows[0][1] == {
        "id": "1",
        "amount": "3",
        "founded": "2021-03-01",
        "at": "2021-03-01 08:30:00",
        "capital": "12.30",
        "ok": "true",
        "town": "南湖区",
    }
    assert rows[1][1]["amount"] == "0.1"
    assert rows[2][1]["amount"] == "100000000000000000000"
    assert rows[1][1]["founded"] is None


def test_parquet_nested_column_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "n.parquet"
    pq.write_table(pa.table({"tags": pa.array([["a"], ["b", "c"]])}), path)
    with pytest.raises(InputError) as caught:
        open_source(path)
    assert caught.value.column == "tags"


def test_parquet_streams_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"n": pa.array(range(10_000))}), path, row_group_size=4096)
    batches = list(open_source(path).batches(1000))
    assert max(b.num_rows for _, b in batches) <= 1000
    assert batches[-1][0] + batches[-1][1].num_rows - 1 == 10_000
    assert batches[-1][1].column(0)[-1].as_py() == "9999"


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_columns_come_from_the_first_records(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "a.jsonl",
        [
            json.dumps({"name": "张三", "age": 30}, ensure_ascii=False),
            "",
            json.dumps({"name": "李四", "age": 41.0, "tags": ["a"], "ok": True}, ensure_ascii=False),
            json.dumps({"age": None}),
        ],
    )
    source = open_source(path)
    assert isinstance(source, JsonLinesSource)
    assert source.info.columns == ["name", "age", "tags", "ok"]
    rows = rows_of(source)
    assert rows == [
        (1, {"name": "张三", "age": "30", "tags": None, "ok": None}),
        (3, {"name": "李四", "age": "41", "tags": '["a"]', "ok": "true"}),
        (4, {"name": None, "age": None, "tags": None, "ok": None}),
    ]


def test_jsonl_bad_line_names_the_line(tmp_path: Path) -> None:
    lines = [json.dumps({"a": i}) for i in range(10)] + ['{"a": 1,}'] + [json.dumps({"a": 0})]
    with pytest.raises(InputError) as caught:
        rows_of(open_source(write_lines(tmp_path / "bad.jsonl", lines)), 4)
    assert (caught.value.file, caught.value.row) == ("bad.jsonl", 11)


def test_jsonl_non_object_line_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        rows_of(open_source(write_lines(tmp_path / "arr.jsonl", ['{"a": 1}', "[1, 2]"])))
    assert caught.value.row == 2


def test_jsonl_late_new_key_is_refused_with_its_line(tmp_path: Path) -> None:
    lines = [json.dumps({"a": i}) for i in range(1200)] + [json.dumps({"a": 1, "b": 2})]
    with pytest.raises(InputError, match="'b'") as caught:
        rows_of(open_source(write_lines(tmp_path / "late.jsonl", lines)), 500)
    assert caught.value.row == 1201


def test_empty_jsonl_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="empty"):
        open_source(path)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {"k": st.text(max_size=6)},
            optional={"v": st.one_of(st.none(), st.integers(-(10**12), 10**12), st.text(max_size=6))},
        ),
        min_size=1,
        max_size=20,
    ),
    st.integers(1, 7),
)
def test_jsonl_round_trip(tmp_path: Path, records: list[dict[str, object]], batch_rows: int) -> None:
    path = write_lines(tmp_path / "h.jsonl", [json.dumps(r, ensure_ascii=False) for r in records])
    source = open_source(path)
    got = rows_of(source, batch_rows)
    assert [n for n, _ in got] == list(range(1, len(records) + 1))
    for (_, row), record in zip(got, records, strict=True):
        for column in source.info.columns:
            value = record.get(column)
            assert row[column] == (None if value is None else str(value))


@pytest.mark.parametrize(
    "name,content,kind",
    [
        ("a.csv", b"a,b\n1,2\n", "csv"),
        ("a.txt", b"a\tb\n1\t2\n", "csv"),
        ("a.jsonl", b'{"a": 1}\n', "jsonl"),
        ("data", b'{"a": 1}\n', "jsonl"),
        ("a.dat", b"PAR1....", "parquet"),
        ("a.xls", b"PK\x03\x04....", "xlsx"),
        ("a.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1....", "xls"),
        ("a.xls", b"a\tb\n1\t2\n", "csv"),
    ],
)
def test_format_is_chosen_by_content_first(tmp_path: Path, name: str, content: bytes, kind: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert sniff_format(path) == kind


def test_text_saved_as_xls_is_read_as_text_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "export.xls"
    path.write_text("序号\t名称\n1\t甲\n", encoding="gbk")
    source = open_source(path)
    assert isinstance(source, CsvSource)
    assert source.info.delimiter == "\t"
    assert any("xls" in note for note in source.info.notes)
    assert rows_of(source) == [(2, {"序号": "1", "名称": "甲"})]


def test_web_page_saved_as_xls_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "page.xls"
    path.write_text("<html><table><tr><td>1</td></tr></table></html>", encoding="utf-8")
    with pytest.raises(InputError, match="web page"):
        open_source(path)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        open_source(tmp_path / "nope.csv")
