"""Export formats: every writer's bytes parse back to the rows it was given, and a stream that fails
midway never parses as a complete file."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from python_calamine import CalamineWorkbook

from pubdata.errors import InputError
from pubdata.gateway.engine import QueryError
from pubdata.gateway.export import FORMATS, UTF8_BOM, ExportFormat, ExportJob, _concatenated, get_format

ROWS = pa.table(
    {
        "公民身份号码": ["330402********1234", None, "330411********567X"],
        "参保人数": pa.array([3, None, 12], pa.int64()),
        "参保日期": pa.array([dt.date(2021, 3, 1), dt.date(2022, 1, 25), None], pa.date32()),
        "缴费基数": pa.array(
            [decimal.Decimal("4200.50"), None, decimal.Decimal("0.00")], pa.decimal128(12, 2)
        ),
        "note": ['含"引号",与逗号', "line\nbreak", "=1+1"],
    }
)


def export(name: str, table: pa.Table = ROWS, **options: object) -> bytes:
    job = ExportJob(table.schema, table.to_batches(max_chunksize=2), **options)  # type: ignore[arg-type]
    return b"".join(FORMATS[name].write(job))


def failing_stream(fmt: ExportFormat, table: pa.Table = ROWS) -> bytes:
    """What `run_query` sends when the engine fails after the first batch: the bytes so far, then
    the format's failure marker."""

    def batches() -> Iterator[pa.RecordBatch]:
        yield table.to_batches()[0]
        raise QueryError("the query exceeded its time budget of 1 s and was stopped")

    sent: list[bytes] = []
    try:
        for chunk in fmt.write(ExportJob(table.schema, batches())):
            sent.append(chunk)
    except QueryError as failure:
        sent.append(fmt.failure(str(failure)))
    return b"".join(sent)


def test_registry_names_the_built_in_formats_and_refuses_others() -> None:
    assert set(FORMATS) == {"json", "jsonl", "csv", "arrow", "parquet", "xlsx"}
    assert get_format(" CSV ").name == "csv"
    with pytest.raises(InputError, match="unknown format 'pdf': use one of arrow, csv"):
        get_format("pdf")
    assert [f.name for f in FORMATS.values() if f.bounded] == ["json", "xlsx"]
    assert [f.name for f in FORMATS.values() if not f.bulk] == ["json"]


def test_csv_with_bom_opens_with_chinese_headers_and_quoted_values_intact() -> None:
    data = export("csv", bom=True)
    assert data.startswith(UTF8_BOM)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["公民身份号码", "参保人数", "参保日期", "缴费基数", "note"]
    assert rows[1] == ["330402********1234", "3", "2021-03-01", "4200.50", '含"引号",与逗号']
    assert rows[2][4] == "line\nbreak" and rows[2][0] == ""
    assert len(rows) == 4
    assert not export("csv", csv_raw=True).startswith(UTF8_BOM)


def test_jsonl_is_one_object_per_row_in_order() -> None:
    lines = export("jsonl").decode("utf-8").splitlines()
    names = ROWS.column_names
    assert [json.loads(line) for line in lines] == [
        dict(zip(names, ["330402********1234", 3, "2021-03-01", "4200.50", '含"引号",与逗号'], strict=True)),
        dict(zip(names, [None, None, "2022-01-25", None, "line\nbreak"], strict=True)),
        dict(zip(names, ["330411********567X", 12, None, "0.00", "=1+1"], strict=True)),
    ]


def test_json_is_one_object_with_columns_rows_truncation_and_metadata() -> None:
    answer = json.loads(export("json", meta={"policy": {"versions": {"x": 2}}}, truncated=lambda: True))
    assert [c["name"] for c in answer["columns"]] == ROWS.column_names
    assert answer["rows"][0] == ["330402********1234", 3, "2021-03-01", "4200.50", '含"引号",与逗号']
    assert len(answer["rows"]) == 3
    assert answer["truncated"] is True and answer["policy"] == {"versions": {"x": 2}}
    empty = json.loads(export("json", ROWS.slice(0, 0)))
    assert empty["rows"] == [] and empty["truncated"] is False


def test_arrow_parquet_and_xlsx_read_back() -> None:
    assert pa.ipc.open_stream(export("arrow")).read_all().equals(ROWS)
    assert pq.read_table(io.BytesIO(export("parquet"))).equals(ROWS)
    sheet = CalamineWorkbook.from_filelike(io.BytesIO(export("xlsx"))).get_sheet_by_index(0).to_python()
    assert sheet[0] == ROWS.column_names
    assert sheet[1][:3] == ["330402********1234", 3.0, dt.date(2021, 3, 1)]
    assert sheet[3][4] == "=1+1"  # text stays text: no formula reaches Excel


def test_a_failed_stream_ends_with_the_documented_marker() -> None:
    text = failing_stream(FORMATS["csv"]).decode("utf-8")
    assert text.splitlines()[-1] == "# error: the query exceeded its time budget of 1 s and was stopped"
    last = json.loads(failing_stream(FORMATS["jsonl"]).decode("utf-8").splitlines()[-1])
    assert last == {"error": "the query exceeded its time budget of 1 s and was stopped"}
    # Arrow: the rows sent are readable, but the stream does not end cleanly.
    broken = failing_stream(FORMATS["arrow"])
    reader = pa.ipc.open_stream(broken)
    assert reader.read_next_batch().num_rows == ROWS.to_batches()[0].num_rows
    with pytest.raises(pa.ArrowInvalid):
        reader.read_next_batch()
    assert b"pubdata-error: the query exceeded" in broken
    with pytest.raises(pa.ArrowInvalid):
        pq.read_table(io.BytesIO(failing_stream(FORMATS["parquet"])))


def test_a_successful_arrow_stream_ends_with_the_end_of_stream_marker() -> None:
    assert export("arrow").endswith(b"\xff\xff\xff\xff\x00\x00\x00\x00")


def test_memory_follows_the_batch_not_the_result() -> None:
    """Each streamed format hands out bytes per batch: the first chunk exists before the last batch."""
    big = pa.table({"n": pa.array(range(200_000), pa.int64())})
    for name in ("csv", "jsonl", "arrow", "parquet"):
        chunks = FORMATS[name].write(ExportJob(big.schema, big.to_batches(max_chunksize=10_000)))
        sizes = [len(c) for c in chunks]
        assert len([s for s in sizes if s]) >= 10, name
        assert max(sizes) < sum(sizes) / 5, name


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.tuples(st.none() | _text, st.none() | st.integers(-(2**62), 2**62)), max_size=30))
def test_json_formats_round_trip_any_text_and_integers(values: list[tuple[str | None, int | None]]) -> None:
    table = pa.table(
        {
            "名称": pa.array([v[0] for v in values], pa.string()),
            "n": pa.array([v[1] for v in values], pa.int64()),
        }
    )
    expected = table.to_pylist()
    # JSON lines split at "\n" only: U+0085 or U+2028 inside a value are text, not line ends.
    lines = export("jsonl", table).decode("utf-8").split("\n")[:-1]
    assert [json.loads(line) for line in lines] == expected
    assert json.loads(export("json", table))["rows"] == [[r["名称"], r["n"]] for r in expected]
    parsed = list(csv.reader(io.StringIO(export("csv", table, csv_raw=True).decode("utf-8"), newline="")))
    assert parsed[1:] == [
        ["" if r["名称"] is None else r["名称"], "" if r["n"] is None else str(r["n"])] for r in expected
    ]


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(_text, max_size=30),
    cut=st.integers(0, 30),
    kind=st.sampled_from([pa.string(), pa.large_string(), pa.string_view()]),
)
def test_jsonl_bytes_are_the_rows_back_to_back_whatever_the_arrow_layout(
    values: list[str], cut: int, kind: pa.DataType
) -> None:
    """The JSON-lines writer slices Arrow buffers by offsets: sliced and chunked arrays of every
    string layout must give exactly the values, in order, nothing before or after them."""
    whole = pa.array(["x", *values, "y"], kind).slice(1, len(values))
    chunked = pa.chunked_array([whole.slice(0, cut), whole.slice(cut)], kind)
    assert _concatenated(chunked) == "".join(values).encode("utf-8")
    table = pa.table({"v": pa.array(values, pa.string())})
    batches = [b.slice(1) for b in pa.table({"v": ["skipped", *values]}).to_batches()]
    lines = b"".join(FORMATS["jsonl"].write(ExportJob(table.schema, batches))).decode().split("\n")
    assert [json.loads(line)["v"] for line in lines[:-1]] == values and lines[-1] == ""
