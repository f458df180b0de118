"""Excel reading: titles, merged headers, totals, cell rendering, and zip bombs refused."""

from __future__ import annotations

import datetime as dt
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
import xlsxwriter

from pubdata.errors import InputError
from pubdata.ingest.readers import open_source
from pubdata.ingest.readers.excel import ExcelSource, check_zip_members, render_cell
from pubdata.ingest.source import ROUNDED_MARK

ID_NUMBER = "33010219900101123X"


def rows_of(source: ExcelSource, batch_rows: int = 2) -> list[tuple[int, dict[str, str | None]]]:
    out: list[tuple[int, dict[str, str | None]]] = []
    for first, batch in source.batches(batch_rows):
        assert batch.schema.names == source.info.columns
        out.extend((first + i, r) for i, r in enumerate(batch.to_pylist()))
    return out


def park_workbook(path: Path) -> Path:
    """The shape agencies send: merged title, two-row header with a group, totals at the bottom."""
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("企业名单")
    date = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.merge_range("A1:F1", "2021年嘉兴市小微企业园区企业名单")
    sheet.merge_range("A2:A3", "序号")
    sheet.merge_range("B2:B3", "企业名称")
    sheet.merge_range("C2:D2", "法定代表人")
    sheet.write("C3", "姓名")
    sheet.write("D3", "身份证号")
    sheet.merge_range("E2:E3", "成立日期")
    sheet.merge_range("F2:F3", "注册资本（万元）")
    data = [
        (1, "嘉兴市某科技有限公司", "张三", ID_NUMBER, dt.date(2019, 5, 17), 500.0),
        (2, "平湖市某机械厂", "李四", "330482198512120011", dt.date(2020, 1, 2), 12.5),
        (3, "海宁市某纺织有限公司", "王五", "330481197001010017", dt.date(2021, 12, 31), 0.1 + 0.2),
    ]
    for r, (no, name, person, id_number, founded, capital) in enumerate(data, start=3):
        sheet.write_number(r, 0, no)
        sheet.write_string(r, 1, name)
        sheet.write_string(r, 2, person)
        sheet.write_string(r, 3, id_number)
        sheet.write_datetime(r, 4, dt.datetime.combine(founded, dt.time()), date)
        sheet.write_number(r, 5, capital)
    sheet.write_string(6, 0, "合 计")
    sheet.write_number(6, 5, 512.8)
    book.add_worksheet("说明").write("A1", "填表说明")
    book.close()
    return path


def test_title_merged_header_and_total_row(tmp_path: Path) -> None:
    source = open_source(park_workbook(tmp_path / "园区.xlsx"))
    assert isinstance(source, ExcelSource)
    info = source.info
    assert info.format == "xlsx"
    assert info.title_rows == ["2021年嘉兴市小微企业园区企业名单"]
    assert info.columns == [
        "序号",
        "企业名称",
        "法定代表人_姓名",
        "法定代表人_身份证号",
        "成立日期",
        "注册资本（万元）",
    ]
    assert info.header_row == 3
    rows = rows_of(source)
    assert [n for n, _ in rows] == [4, 5, 6]
    assert info.total_rows == [7]
    first = rows[0][1]
    assert first == {
        "序号": "1",
        "企业名称": "嘉兴市某科技有限公司",
        "法定代表人_姓名": "张三",
        "法定代表人_身份证号": ID_NUMBER,
        "成立日期": "2019-05-17",
        "注册资本（万元）": "500",
    }
    assert rows[1][1]["注册资本（万元）"] == "12.5"
    assert rows[2][1]["注册资本（万元）"] == "0.3"


def test_named_sheet_and_missing_sheet(tmp_path: Path) -> None:
    path = park_workbook(tmp_path / "b.xlsx")
    source = open_source(path, sheet="说明")
    assert source.info.columns == ["填表说明"]
    with pytest.raises(InputError, match="企业名单"):
        open_source(path, sheet="不存在")


def test_long_numbers_are_never_scientific_and_are_flagged(tmp_path: Path) -> None:
    path = tmp_path / "n.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["身份证号", "金额", "时间", "是否"])
    sheet.write_number(1, 0, 330102199001011234)
    sheet.write_number(1, 1, 1e-7)
    sheet.write_datetime(
        1, 2, dt.datetime(2021, 3, 1, 8, 30), book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    )
    sheet.write_boolean(1, 3, True)
    book.close()
    source = open_source(path)
    [(row, record)] = rows_of(source)
    assert row == 2
    assert record == {
        "身份证号": ROUNDED_MARK + "330102199001011000",  # the cell type says it was rounded
        "金额": "0.0000001",
        "时间": "2021-03-01 08:30:00",
        "是否": "TRUE",
    }
    assert any("身份证号" in note and "text" in note for note in source.info.notes)


@pytest.mark.parametrize(
    "value,text",
    [
        (1.0, "1"),
        (13800138000.0, "13800138000"),
        (2.5, "2.5"),
        (1e20, "100000000000000000000"),
        ("", None),
        (dt.date(2021, 1, 2), "2021-01-02"),
        (dt.datetime(2021, 1, 2), "2021-01-02"),
        (dt.time(9, 5), "09:05:00"),
        (False, "FALSE"),
        (7, "7"),
    ],
)
def test_render_cell(value: object, text: str | None) -> None:
    assert render_cell(value) == text


def test_table_starting_off_the_corner(tmp_path: Path) -> None:
    path = tmp_path / "o.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    sheet.write_row("C4", ["编号", "名称"])
    sheet.write_row("C5", ["A1", "甲"])
    sheet.write_row("C7", ["A2", "乙"])
    book.close()
    rows = rows_of(open_source(path))
    assert rows == [(5, {"编号": "A1", "名称": "甲"}), (7, {"编号": "A2", "名称": "乙"})]


def test_many_rows_stream_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "big.xlsx"
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["编号", "名称"])
    for i in range(1, 5001):
        sheet.write_row(i, 0, [i, f"公司{i}"])
    sheet.write_row(5001, 0, ["总计", "5000"])
    book.close()
    source = open_source(path)
    batches = list(source.batches(512))
    assert max(b.num_rows for _, b in batches) <= 512
    assert sum(b.num_rows for _, b in batches) == 5000
    assert batches[-1][0] + batches[-1][1].num_rows - 1 == 5001
    assert source.info.total_rows == [5002]


def test_xls_with_merged_title(tmp_path: Path) -> None:
    xlwt = pytest.importorskip("xlwt")
    path = tmp_path / "old.xls"
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("Sheet1")
    sheet.write_merge(0, 0, 0, 2, "2020年某局数据")
    for c, name in enumerate(["统一社会信用代码", "名称", "人数"]):
        sheet.write(1, c, name)
    sheet.write(2, 0, "91330402MA2B8XXXX1")
    sheet.write(2, 1, "某公司")
    sheet.write(2, 2, 12)
    sheet.write(3, 0, "合计")
    sheet.write(3, 2, 12)
    book.save(str(path))
    source = open_source(path)
    assert source.info.format == "xls"
    assert source.info.title_rows == ["2020年某局数据"]
    assert rows_of(source) == [
        (3, {"统一社会信用代码": "91330402MA2B8XXXX1", "名称": "某公司", "人数": "12"})
    ]
    assert source.info.total_rows == [4]


def test_xlsx_named_xls_is_read_as_xlsx(tmp_path: Path) -> None:
    path = park_workbook(tmp_path / "real.xlsx").rename(tmp_path / "named.xls")
    assert open_source(path).info.format == "xlsx"


def _bomb(path: Path, member_bytes: int) -> Path:
    """A small XLSX whose shared strings really inflate to `member_bytes` of zeros.

    One fully flushed deflate block of 1 MiB of zeros is repeated, so a 2 GiB member is written
    in milliseconds; the CRC is left 0 since nothing may ever get as far as inflating it.
    """
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = packer.compress(b"\0" * (1 << 20)) + packer.flush(zlib.Z_FULL_FLUSH)
    tail = packer.flush(zlib.Z_FINISH)
    repeats = member_bytes >> 20
    members = [("[Content_Types].xml", b"<Types/>", b"<Types/>", 0), ("xl/workbook.xml", b"<w/>", b"<w/>", 0)]
    with path.open("wb") as out:
        central = b""
        for name, stored, raw, _ in members:
            offset = out.tell()
            out.write(_local_header(name, 0, zlib.crc32(raw), len(stored), len(raw)) + stored)
            central += _central_header(name, 0, zlib.crc32(raw), len(stored), len(raw), offset)
        name = "xl/sharedStrings.xml"
        offset = out.tell()
        size = len(block) * repeats + len(tail)
        out.write(_local_header(name, 8, 0, size, member_bytes))
        for _ in range(repeats):
            out.write(block)
        out.write(tail)
        central += _central_header(name, 8, 0, size, member_bytes, offset)
        start = out.tell()
        out.write(central)
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 3, 3, len(central), start, 0))
    return path


def _local_header(name: str, method: int, crc: int, csize: int, usize: int) -> bytes:
    encoded = name.encode()
    return (
        struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, csize, usize, len(encoded), 0)
        + encoded
    )


def _central_header(name: str, method: int, crc: int, csize: int, usize: int, offset: int) -> bytes:
    encoded = name.encode()
    fixed = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        20,
        20,
        0,
        method,
        0,
        0x21,
        crc,
        csize,
        usize,
        len(encoded),
        0,
        0,
        0,
        0,
        0,
        offset,
    )
    return fixed + encoded


def test_zip_bomb_is_refused_before_opening(tmp_path: Path) -> None:
    path = _bomb(tmp_path / "bomb.xlsx", 2 << 30)
    assert path.stat().st_size < 4 << 20
    with pytest.raises(InputError, match="zip bomb") as caught:
        open_source(path)
    assert caught.value.file == "bomb.xlsx"


def test_high_ratio_member_is_refused_below_the_size_limit(tmp_path: Path) -> None:
    path = _bomb(tmp_path / "ratio.xlsx", 64 << 20)
    with pytest.raises(InputError, match="zip bomb"):
        check_zip_members(path)


def test_member_lying_about_its_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "liar.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"<a/>" * (4 << 20))  # 16 MB, small ratio limit below
    data = bytearray(path.read_bytes())
    central = data.rfind(b"PK\x01\x02")  # central record of the last member (the sheet)
    struct.pack_into("<I", data, central + 24, 1000)  # declare 1000 bytes uncompressed
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="declares 1,000"):
        check_zip_members(path, max_uncompressed_bytes=8 << 20)


def test_ordinary_workbook_passes_the_zip_check(tmp_path: Path) -> None:
    check_zip_members(park_workbook(tmp_path / "ok.xlsx"), max_uncompressed_bytes=1 << 20)


def test_corrupt_workbook_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(InputError) as caught:
        open_source(path)
    assert caught.value.file == "broken.xlsx"
