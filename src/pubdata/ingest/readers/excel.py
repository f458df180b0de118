"""XLSX and XLS workbooks read with calamine, rendered as a person reads the cells.

calamine loads one worksheet at a time into memory, so an XLSX costs memory in proportion to its
sheet, not to the batch size. That is why an XLSX is inspected before it is opened: a member that
would expand beyond `max_uncompressed_bytes` (default 1 GiB), or that compresses more than 200:1
while over 10 MB, is refused as a zip bomb; the limit is the bound on the memory an XLSX can take.
Rows are yielded in batches all the same, so later steps see the same stream as for CSV.

Dates become ISO `YYYY-MM-DD` (with the time when there is one), whole numbers lose Excel's `.0`,
and no number is ever shown in scientific notation. Excel itself keeps only 15 significant digits,
so an 18-digit identity number typed as a number is already damaged in the file: such columns are
named in `info.notes` so the sender can re-export them as text, and each such value carries
`ROUNDED_MARK`, which the check reports as a problem of its row whatever the digits say.
"""

from __future__ import annotations

import datetime as dt
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
from python_calamine import CalamineError, CalamineSheet, CalamineWorkbook, SheetTypeEnum, SheetVisibleEnum

from pubdata.errors import InputError
from pubdata.ingest.readers.layout import (
    LAYOUT_SAMPLE_ROWS,
    find_header,
    name_columns,
    table_body,
)
from pubdata.ingest.source import ROUNDED_MARK, SourceInfo
from pubdata.messages import text as sentence

DEFAULT_MAX_UNCOMPRESSED_BYTES = 1 << 30
#: A member over `RATIO_MIN_BYTES` that expands more than this many times is treated as a bomb.
MAX_COMPRESSION_RATIO = 200
RATIO_MIN_BYTES = 10 << 20
_MAX_HEADER_DEPTH = 3
_PRECISE_DIGITS = 1e15
_OLE = b"\xd0\xcf\x11\xe0"

Merge = tuple[tuple[int, int], tuple[int, int]]


def check_zip_members(path: Path, max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES) -> None:
    """Refuse an XLSX whose parts would expand beyond the limit, before calamine inflates them.

    Declared sizes are checked first (cheap); the sheets and shared strings are then inflated in
    a stream and counted, because a crafted archive can declare a small size and hold a large one.
    """
    file = path.name
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(
            sentence("not a readable XLSX (ZIP) file: {detail}", detail=str(exc)), file=file
        ) from exc
    with archive, path.open("rb") as raw:
        for member in archive.infolist():
            declared = member.file_size
            ratio = declared / max(1, member.compress_size)
            if declared > max_uncompressed_bytes or (
                declared > RATIO_MIN_BYTES and ratio > MAX_COMPRESSION_RATIO
            ):
                raise InputError(
                    sentence(
                        "refused as a zip bomb: part {part} expands to {declared:,} bytes "
                        "({ratio:,.0f}:1); the limit is {limit:,} bytes",
                        part=member.filename,
                        declared=declared,
                        ratio=ratio,
                        limit=max_uncompressed_bytes,
                    ),
                    file=file,
                )
            if _is_table_part(member.filename):
                actual = _inflated_size(raw, member, max_uncompressed_bytes)
                if actual > max_uncompressed_bytes:
                    raise InputError(
                        sentence(
                            "refused as a zip bomb: part {part} expands beyond "
                            "{limit:,} bytes although it declares {declared:,}",
                            part=member.filename,
                            limit=max_uncompressed_bytes,
                            declared=declared,
                        ),
                        file=file,
                    )


def _is_table_part(name: str) -> bool:
    return name == "xl/sharedStrings.xml" or name.startswith("xl/worksheets/")


def _inflated_size(raw: Any, member: zipfile.ZipInfo, cap: int) -> int:
    if member.compress_type == zipfile.ZIP_STORED:
        return member.compress_size
    if member.compress_type != zipfile.ZIP_DEFLATED:
        return member.file_size
    raw.seek(member.header_offset + 26)
    name_len = int.from_bytes(raw.read(2), "little")
    extra_len = int.from_bytes(raw.read(2), "little")
    raw.seek(member.header_offset + 30 + name_len + extra_len)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    while not inflater.eof and total <= cap:
        chunk = inflater.unconsumed_tail or raw.read(1 << 16)
        if not chunk:
            break
        total += len(inflater.decompress(chunk, 1 << 22))
    return total


def render_cell(value: object) -> str | None:
    """A cell as its text; dates ISO, numbers without float noise or exponent."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return _number_text(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        seconds = int(value.total_seconds())
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return None if value is None else str(value)


def _number_text(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if value.is_integer() and abs(value) < _PRECISE_DIGITS:
        return str(int(value))
    # 15 significant digits is what Excel shows and stores faithfully.
    text = format(Decimal(format(value, ".15g")), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class ExcelSource:
    """One worksheet of an XLSX or XLS workbook; row numbers are the sheet's own row numbers."""

    def __init__(
        self,
        path: Path,
        *,
        sheet: str | None = None,
        max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES,
    ) -> None:
        file = path.name
        with path.open("rb") as handle:
            kind = "xls" if handle.read(4) == _OLE else "xlsx"
        if kind == "xlsx":
            check_zip_members(path, max_uncompressed_bytes)
        try:
            workbook = _open_workbook(path, kind)
            name = _choose_sheet(workbook, sheet, file)
            self._sheet: CalamineSheet = workbook.get_sheet_by_name(name)
            #: The sheet read, and the other worksheets (to name them when this one is wrong).
            self.sheet = name
            self.other_sheets = [
                str(m.name)
                for m in workbook.sheets_metadata
                if m.typ == SheetTypeEnum.WorkSheet and str(m.name) != name
            ]
        except CalamineError as exc:
            raise InputError(
                sentence("cannot read the workbook: {detail}", detail=str(exc)), file=file
            ) from exc
        start = self._sheet.start
        if start is None:
            raise InputError(sentence("sheet {name!r} is empty", name=name), file=file)
        self._first_col = start[1]
        grid = [
            [render_cell(v) for v in row[self._first_col :]]
            for row in self._sheet.to_python(skip_empty_area=False, nrows=start[0] + LAYOUT_SAMPLE_ROWS)
        ]
        merges = self._sheet.merged_cell_ranges
        layout = find_header(grid)
        depth = _header_depth(merges, layout.index, len(grid))
        raw_names = _header_names(grid, merges, layout.index, depth, self._first_col)
        names, notes = name_columns(raw_names, fill_forward=merges is None)
        self._data_start = layout.index + depth
        self.info = SourceInfo(
            path=path,
            format=kind,
            columns=names,
            header_row=layout.index + depth,
            title_rows=layout.title_rows,
            notes=[f"sheet {name!r}", *notes],
            marks_rounded=True,
        )
        if depth > 1:
            self.info.notes.append(f"header spans rows {layout.index + 1}–{layout.index + depth}")
        if layout.title_rows:
            self.info.notes.append(f"{len(layout.title_rows)} title row(s) above the header skipped")

    def batches(self, batch_rows: int) -> Iterator[tuple[int, pa.RecordBatch]]:
        yield from table_body(self._rows(batch_rows), self.info, batch_rows)

    def _rows(self, batch_rows: int) -> Iterator[tuple[int, pa.RecordBatch]]:
        width = len(self.info.columns)
        imprecise: set[str] = set()
        chunk: list[Sequence[object]] = []
        row_no = 0
        first_row = self._data_start
        for index, row in enumerate(self._sheet.iter_rows()):
            if index == 0 and row and all(v == "" for v in row):
                origin = 0  # this calamine yields rows from the sheet's first row, empty or not
            elif index == 0:
                origin = (self._sheet.start or (0, 0))[0]
            absolute = origin + index
            if absolute < first_row:
                continue
            if not chunk:
                row_no = absolute + 1
            chunk.append(row)
            if len(chunk) == batch_rows:
                yield row_no, _to_batch(chunk, self.info.columns, width, imprecise)
                chunk = []
        if chunk:
            yield row_no, _to_batch(chunk, self.info.columns, width, imprecise)
        if imprecise:
            self.info.notes.append(
                "numbers with more than 15 digits in column(s) "
                + ", ".join(sorted(imprecise))
                + " were rounded by Excel; re-export identity numbers as text"
            )


def _to_batch(
    rows: list[Sequence[object]], names: list[str], width: int, imprecise: set[str]
) -> pa.RecordBatch:
    columns = list(zip(*(_fit(r, width) for r in rows), strict=True))
    arrays = []
    for name, values in zip(names, columns, strict=True):
        if any(_rounded(v) for v in values):
            imprecise.add(name)
            texts = [ROUNDED_MARK + str(render_cell(v)) if _rounded(v) else render_cell(v) for v in values]
        else:
            texts = [render_cell(v) for v in values]
        arrays.append(pa.array(texts, pa.string()))
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _rounded(value: object) -> bool:
    """A number cell past 15 digits: Excel kept only 15 of them (ints come from the same cells)."""
    return isinstance(value, float | int) and not isinstance(value, bool) and abs(value) >= _PRECISE_DIGITS


def _fit(row: Sequence[object], width: int) -> Sequence[object]:
    if len(row) == width:
        return row
    return [*row[:width], *([""] * (width - len(row)))]


def _open_workbook(path: Path, kind: str) -> CalamineWorkbook:
    """calamine picks its parser by suffix; a mislabelled file is handed over as content instead."""
    if path.suffix.lower() in ({".xls"} if kind == "xls" else {".xlsx", ".xlsm"}):
        return CalamineWorkbook.from_path(str(path))
    with path.open("rb") as handle:
        return CalamineWorkbook.from_filelike(handle)


def _choose_sheet(workbook: CalamineWorkbook, wanted: str | None, file: str) -> str:
    names: list[str] = workbook.sheet_names
    if wanted is not None:
        if wanted not in names:
            raise InputError(
                sentence(
                    "no sheet named {name!r}; the workbook has {sheets}", name=wanted, sheets=", ".join(names)
                ),
                file=file,
            )
        return wanted
    for meta in workbook.sheets_metadata:
        if meta.typ == SheetTypeEnum.WorkSheet and meta.visible == SheetVisibleEnum.Visible:
            return str(meta.name)
    if not names:
        raise InputError(sentence("the workbook has no sheets"), file=file)
    return names[0]


def _header_depth(merges: list[Merge] | None, header: int, rows: int) -> int:
    """How many rows the header takes: a merge that starts on it and spans down or across."""
    depth = 1
    for (r0, c0), (r1, c1) in merges or []:
        if r0 != header:
            continue
        depth = max(depth, r1 - r0 + 1, 2 if c1 > c0 else 1)
    return max(1, min(depth, _MAX_HEADER_DEPTH, rows - header))


def _header_names(
    grid: list[list[str | None]], merges: list[Merge] | None, header: int, depth: int, first_col: int
) -> list[str | None]:
    """Fill merged header cells across their range and join group and sub-header as group_sub."""
    rows = [list(grid[header + i]) for i in range(depth)]
    for (r0, c0), (r1, c1) in merges or []:
        top = grid[r0][c0 - first_col] if 0 <= r0 < len(grid) and c0 >= first_col else None
        for r in range(max(r0, header), min(r1, header + depth - 1) + 1):
            for c in range(max(c0, first_col), c1 + 1):
                if c - first_col < len(rows[r - header]):
                    rows[r - header][c - first_col] = top
    names: list[str | None] = []
    for column in zip(*rows, strict=True):
        parts: list[str] = []
        for part in column:
            if part and part.strip() and (not parts or parts[-1] != part.strip()):
                parts.append(part.strip())
        names.append("_".join(parts) or None)
    return names


def sheets_with(path: Path, names: Sequence[str], accept: Callable[[list[str]], bool]) -> list[str]:
    """Those of the sheets `names` whose header `accept` takes (sheets that cannot be read are skipped)."""
    found = []
    for name in names:
        try:
            columns = ExcelSource(path, sheet=name).info.columns
        except InputError:
            continue
        if accept(columns):
            found.append(name)
    return found
