"""CSV/TSV reading: encodings, delimiters, title and total rows, errors that name the row."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pubdata.errors import InputError
from pubdata.ingest.readers import open_source
from pubdata.ingest.readers.csv import CsvSource, sniff_delimiter
from pubdata.ingest.readers.layout import find_header, name_columns

HEADER = "序号,企业名称,统一社会信用代码,地址"
ROWS = [
    "1,嘉兴市南湖区某科技有限公司,91330402MA2B8XXXX1,嘉兴市南湖区东栅街道",
    "2,平湖市某机械厂,91330482MA2C1XXXX2,平湖市当湖街道",
    "3,海宁市某纺织有限公司,91330481MA2D3XXXX3,海宁市海洲街道",
]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def read_all(path: Path, batch_rows: int = 2) -> tuple[CsvSource, list[tuple[int, dict[str, str | None]]]]:
    source = open_source(path)
    assert isinstance(source, CsvSource)
    rows: list[tuple[int, dict[str, str | None]]] = []
    for first, batch in source.batches(batch_rows):
        assert batch.num_rows <= batch_rows
        assert all(pa.types.is_string(t) or pa.types.is_large_string(t) for t in batch.schema.types)
        assert batch.schema.names == source.info.columns
        rows.extend((first + i, record) for i, record in enumerate(batch.to_pylist()))
    return source, rows


def plain_csv() -> str:
    return "\n".join([HEADER, *ROWS]) + "\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])
def test_encodings_are_detected_and_decoded(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path / "企业.csv", plain_csv(), encoding)
    source, rows = read_all(path)
    assert source.info.columns == ["序号", "企业名称", "统一社会信用代码", "地址"]
    assert [r["企业名称"] for _, r in rows] == [line.split(",")[1] for line in ROWS]
    assert [n for n, _ in rows] == [2, 3, 4]
    if encoding in {"gbk", "gb18030"}:
        assert source.info.encoding == "gb18030"


def test_characters_only_gb18030_has_survive(tmp_path: Path) -> None:
    path = write(tmp_path / "rare.csv", "姓名,备注\n王䶮,𠀀字\n李𠀀,㐀\n", "gb18030")
    _, rows = read_all(path)
    assert [r["姓名"] for _, r in rows] == ["王䶮", "李𠀀"]
    assert rows[0][1]["备注"] == "𠀀字"


@pytest.mark.parametrize("delimiter", [",", "\t", ";", "|"])
def test_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    text = plain_csv().replace(",", delimiter)
    source, rows = read_all(write(tmp_path / "d.txt", text))
    assert source.info.delimiter == delimiter
    assert rows[2][1]["地址"] == "海宁市海洲街道"


def test_quoted_fields_keep_newlines_and_delimiters_and_count_records(tmp_path: Path) -> None:
    text = 'id,name,note\n1,"甲,乙","第一行\n第二行"\n2,丙,"say ""hi"""\n3,丁,x\n'
    _, rows = read_all(write(tmp_path / "q.csv", text))
    assert rows[0] == (2, {"id": "1", "name": "甲,乙", "note": "第一行\n第二行"})
    assert rows[1] == (3, {"id": "2", "name": "丙", "note": 'say "hi"'})
    assert rows[2][0] == 4  # records are counted, not physical lines


def test_title_rows_and_total_rows_are_reported_not_loaded(tmp_path: Path) -> None:
    text = "2021年嘉兴市小微企业园区企业名单,,,\n" + plain_csv() + "合 计,3,,\n"
    source, rows = read_all(write(tmp_path / "园区.csv", text, "gbk"))
    info = source.info
    assert info.title_rows == ["2021年嘉兴市小微企业园区企业名单"]
    assert info.header_row == 2
    assert [n for n, _ in rows] == [3, 4, 5]
    assert info.total_rows == [6]
    assert any("total" in note for note in info.notes)
    assert all(r["序号"] != "合 计" for _, r in rows)


def test_total_row_is_dropped_across_batch_boundaries(tmp_path: Path) -> None:
    body = "".join(f"{i},公司{i},X{i},地址{i}\n" for i in range(1, 101))
    text = HEADER + "\n" + body + "总计,100,,\n填报人：张三,,,\n"
    for batch_rows in (1, 3, 7, 100, 1000):
        source, rows = read_all(write(tmp_path / "t.csv", text), batch_rows)
        assert [n for n, _ in rows] == list(range(2, 102))
        assert source.info.total_rows == [102]


def test_a_total_label_in_the_middle_is_data(tmp_path: Path) -> None:
    body = "".join(f"{i},公司{i},X,Y\n" for i in range(10))
    text = HEADER + "\n合计,不是最后,X,Y\n" + body
    source, rows = read_all(write(tmp_path / "m.csv", text))
    assert rows[0][1]["序号"] == "合计"
    assert source.info.total_rows == []


def test_duplicate_and_empty_header_names_are_made_unique(tmp_path: Path) -> None:
    source, rows = read_all(write(tmp_path / "h.csv", "名称,,名称,名称_2\n1,2,3,4\n"))
    assert source.info.columns == ["名称", "column_2", "名称_3", "名称_2"]
    assert len(source.info.notes) == 2
    assert rows[0][1]["名称_3"] == "3"


def test_blank_lines_keep_row_numbers_true(tmp_path: Path) -> None:
    _, rows = read_all(write(tmp_path / "b.csv", "a,b\n1,2\n\n,\n3,4\n"))
    assert rows == [(2, {"a": "1", "b": "2"}), (5, {"a": "3", "b": "4"})]


def test_truncated_last_line_names_the_row(tmp_path: Path) -> None:
    text = plain_csv() + '4,某公司,"91330402MA2B8XXXX4\n'
    with pytest.raises(InputError) as caught:
        read_all(write(tmp_path / "cut.csv", text))
    assert caught.value.file == "cut.csv"
    assert caught.value.row == 5
    assert "quote" in str(caught.value)


def test_truncated_quote_in_last_column_names_row_and_column(tmp_path: Path) -> None:
    text = plain_csv() + '4,某公司,X,"嘉兴'
    with pytest.raises(InputError) as caught:
        read_all(write(tmp_path / "cut.csv", text))
    assert (caught.value.row, caught.value.column) == (5, "地址")


def test_stray_quote_inside_a_field_is_not_an_error(tmp_path: Path) -> None:
    _, rows = read_all(write(tmp_path / "s.csv", 'a,b\n5" pipe,2\n3,4\n'))
    assert rows[0][1]["a"] == '5" pipe'


def test_ragged_row_names_row_and_column(tmp_path: Path) -> None:
    body = "".join(f"{i},公司,X,Y\n" for i in range(50))
    text = HEADER + "\n" + body + "51,公司,X\n" + body
    with pytest.raises(InputError) as caught:
        read_all(write(tmp_path / "r.csv", text))
    assert (caught.value.file, caught.value.row, caught.value.column) == ("r.csv", 52, "地址")


def test_extra_field_names_the_row(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        read_all(write(tmp_path / "x.csv", "a,b\n1,2\n3,4,5\n"))
    assert caught.value.row == 3
    assert "3 fields" in str(caught.value)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    for content in (b"", b"\xef\xbb\xbf", b"\n\n  \n"):
        with pytest.raises(InputError, match="empty"):
            open_source(write(tmp_path / "e.csv", "") if not content else _raw(tmp_path / "e.csv", content))


def _raw(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def test_undecodable_file_is_refused_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        open_source(_raw(tmp_path / "junk.csv", bytes(range(256)) * 8))
    assert caught.value.file == "junk.csv"


def test_bad_bytes_after_the_sample_name_the_line(tmp_path: Path) -> None:
    good = ("a,b\n" + "1,嘉兴\n" * 40_000).encode("utf-8")
    path = _raw(tmp_path / "mixed.csv", good + "3,平湖\n".encode("gbk"))
    with pytest.raises(InputError) as caught:
        read_all(path, 10_000)
    assert caught.value.file == "mixed.csv"
    assert "line 40002" in str(caught.value)


def test_header_detection_prefers_the_first_wide_row() -> None:
    rows = [
        ["标题", None, None, None, None],
        [None, None, None, None, None],
        ["填报单位：某局", None, None, None, "2021-01-01"],
        ["a", "b", "c", "d", "e"],
        ["1", "2", None, "4", "5"],
    ]
    layout = find_header(rows)
    assert layout.index == 3
    assert layout.title_rows == ["标题", "填报单位：某局 2021-01-01"]


def test_header_cells_split_over_lines_are_joined() -> None:
    names, _ = name_columns(["企业\n名称", " Company  Name "])
    assert names == ["企业名称", "Company Name"]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    st.lists(
        st.lists(
            st.text(alphabet=st.characters(codec="gb18030", exclude_categories=("Cs", "Cc")), max_size=8),
            min_size=3,
            max_size=3,
        ),
        min_size=1,
        max_size=12,
    ),
    st.sampled_from([",", "\t", ";", "|"]),
    st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "utf-16"]),
)
def test_any_values_round_trip(
    tmp_path: Path, values: list[list[str]], delimiter: str, encoding: str
) -> None:
    """Whatever the cells hold, written with csv quoting, they come back as written (empty as null).

    The encoding is given: on a few random characters no detector can be sure of it.
    """
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(["甲", "乙", "丙"])
    writer.writerows(values)
    path = write(tmp_path / "h.csv", buffer.getvalue(), encoding)
    source = CsvSource(path, delimiter=delimiter, encoding=encoding)
    got = [
        (first + i, list(r.values())) for first, b in source.batches(4) for i, r in enumerate(b.to_pylist())
    ]
    expected = [
        (n, [c if c else None for c in row])
        for n, row in enumerate(values, start=2)
        if any(c.strip() for c in row)
    ]
    # a trailing total-looking row may be dropped; nothing else may change
    assert got == expected[: len(got)]
    assert len(expected) - len(got) == len(source.info.total_rows)


@pytest.mark.parametrize("text,expected", [("a,b;c\n1,2;3\n", ","), ("a;b;c\n1;2;3\n", ";"), ("x\n1\n", ",")])
def test_sniff_delimiter(text: str, expected: str) -> None:
    assert sniff_delimiter(text) == expected


SCRIPT = textwrap.dedent(
    """
    import sys, psutil
    from pathlib import Path
    from pubdata.ingest.readers import open_source
    process = psutil.Process()
    source = open_source(Path(sys.argv[1]))
    before = process.memory_info().rss
    peak = before
    rows = 0
    for _, batch in source.batches(2_000):
        rows += batch.num_rows
        peak = max(peak, process.memory_info().rss)
    print(rows, peak - before)
    """
)


def _rss_growth(path: Path) -> tuple[int, int]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path)], capture_output=True, text=True, check=True
    )
    rows, growth = result.stdout.split()
    return int(rows), int(growth)


@pytest.mark.slow
def test_memory_follows_the_batch_not_the_file(tmp_path: Path) -> None:
    line = (
        "330102199001011234,嘉兴市南湖区某某科技有限公司,浙江省嘉兴市南湖区东栅街道某某路100号,13800138000\n"
    )
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    per_mb = (1 << 20) // len(line.encode())
    with small.open("w", encoding="gbk") as handle:
        handle.write("id,name,address,mobile\n" + line * (5 * per_mb))
    with large.open("w", encoding="gbk") as handle:
        handle.write("id,name,address,mobile\n")
        for _ in range(50):
            handle.write(line * per_mb)
    small_rows, small_growth = _rss_growth(small)
    large_rows, large_growth = _rss_growth(large)
    assert large_rows == 50 * per_mb and small_rows == 5 * per_mb
    # ten times the data, about the same memory: bounded by blocks and batches, not by the file
    # (measured: +42 MB for 5 MB, +60 MB for 50 MB; reading it whole costs +150 MB)
    assert large_growth < small_growth + (40 << 20), (small_growth, large_growth)
