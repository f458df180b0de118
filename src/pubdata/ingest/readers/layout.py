"""Where the table really starts and ends in files people made by hand.

Agencies' CSV and Excel files carry a title line above the header ("2021年嘉兴市小微企业园区企业名单"),
blank spacer rows, unnamed or repeated header cells and a 合计 (total) row at the bottom. Loading
those rows as records would put a title into a name column and double every sum, so the readers
share these rules and report what they skipped in `SourceInfo`.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from pubdata.ingest.source import SourceInfo

#: First cells that mark a total row once spaces are removed ("合 计" is common).
TOTAL_LABELS = frozenset({"合计", "总计", "小计", "累计", "总合计"})
#: How many records at the end of a file are examined for total rows.
TRAILER_ROWS = 5
#: How many rows at the top are examined for title rows and the header.
LAYOUT_SAMPLE_ROWS = 30

_SPACES = re.compile(r"\s+")
_CJK_GAP = re.compile(r"(?<=[\u3400-\u9fff])\s+(?=[\u3400-\u9fff])")

Cell = str | None
Segment = tuple[int, pa.RecordBatch]


def is_blank(cell: object) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def is_total_label(cell: object) -> bool:
    if not isinstance(cell, str):
        return False
    text = _SPACES.sub("", cell).rstrip(":：")
    return text in TOTAL_LABELS


@dataclass
class HeaderLayout:
    #: 0-based index of the header among the examined rows.
    index: int
    title_rows: list[str] = field(default_factory=list)


def find_header(rows: Sequence[Sequence[Cell]]) -> HeaderLayout:
    """Pick the first row that is about as wide as the table; narrower rows above it are titles.

    A title row has one or a few filled cells (a merged title, "填报单位：…  日期：…"); the header
    fills at least half of the columns that the rows below it use.
    """
    filled = [sum(not is_blank(c) for c in row) for row in rows]
    widths = [_used_width(row) for row, n in zip(rows, filled, strict=True) if n >= 2]
    if not widths:
        first = next((i for i, n in enumerate(filled) if n), 0)
        return HeaderLayout(first, [_row_text(r) for r in rows[:first] if any(not is_blank(c) for c in r)])
    table_width = Counter(widths).most_common(1)[0][0]
    need = max(2, (table_width + 1) // 2)
    index = next((i for i, n in enumerate(filled) if n >= need), 0)
    titles = [_row_text(r) for r in rows[:index] if any(not is_blank(c) for c in r)]
    return HeaderLayout(index, titles)


def name_columns(raw: Sequence[Cell], *, fill_forward: bool = False) -> tuple[list[str], list[str]]:
    """Turn header cells into unique, non-empty column names, saying what was changed.

    `fill_forward` names an empty cell after the cell to its left, as a merged header cell reads
    when the merge itself is not known.
    """
    names: list[str] = []
    notes: list[str] = []
    for position, cell in enumerate(raw, start=1):
        name = _clean(cell)
        if not name and fill_forward and names:
            name = names[-1]
            notes.append(f"header cell in column {position} is empty; filled from the cell to its left")
        elif not name:
            name = f"column_{position}"
            notes.append(f"header cell in column {position} is empty; named {name}")
        names.append(name)
    seen: Counter[str] = Counter()
    taken = set(names)
    unique: list[str] = []
    for name in names:
        seen[name] += 1
        if seen[name] == 1:
            unique.append(name)
            continue
        suffix = seen[name]
        while f"{name}_{suffix}" in taken:
            suffix += 1
        new = f"{name}_{suffix}"
        taken.add(new)
        unique.append(new)
        notes.append(f"header {name!r} repeats; the repeat is named {new}")
    return unique, notes


def table_body(segments: Iterable[Segment], info: SourceInfo, batch_rows: int) -> Iterator[Segment]:
    """The records of a hand-made table: blank rows skipped, trailing totals dropped, re-batched."""
    return rebatch(drop_total_rows(drop_blank_rows(segments, info), info), batch_rows)


def rebatch(segments: Iterable[Segment], batch_rows: int) -> Iterator[Segment]:
    """Cut batches to at most `batch_rows` records without copying."""
    for row_no, batch in segments:
        for offset in range(0, batch.num_rows, batch_rows):
            yield row_no + offset, batch.slice(offset, batch_rows)


def drop_blank_rows(segments: Iterable[Segment], info: SourceInfo) -> Iterator[Segment]:
    """Skip records whose every cell is empty, keeping the row numbers of the others.

    Spacer rows and the formatted-but-empty rows Excel keeps below a table carry no data; a batch
    with such rows is split so each piece still numbers its rows consecutively.
    """
    skipped = 0
    for row_no, batch in segments:
        if batch.num_rows == 0:
            continue
        filled = _filled_mask(batch)
        if filled.true_count == batch.num_rows:
            yield row_no, batch
            continue
        kept = pc.indices_nonzero(filled)
        skipped += batch.num_rows - len(kept)
        if not len(kept):
            continue
        gaps = pc.not_equal(pc.subtract(kept.slice(1), kept.slice(0, len(kept) - 1)), 1)
        breaks = [i + 1 for i in pc.indices_nonzero(gaps).to_pylist()]
        for start, stop in zip([0, *breaks], [*breaks, len(kept)], strict=True):
            first = kept[start].as_py()
            yield row_no + first, batch.slice(first, stop - start)
    if skipped:
        info.notes.append(f"{skipped} empty row(s) skipped")


def drop_total_rows(segments: Iterable[Segment], info: SourceInfo) -> Iterator[Segment]:
    """Hold back the last few records until the end is known, then drop a trailing 合计 block.

    A total row is one whose first filled cell is 合计/总计/小计 among the last `TRAILER_ROWS`
    records; it is dropped with everything below it when what follows is only more totals or
    one-cell footnotes ("填报人：…"). Rows are reported in `info.total_rows` and `info.notes`.
    """
    held: deque[Segment] = deque()
    held_rows = 0
    for segment in segments:
        held.append(segment)
        held_rows += segment[1].num_rows
        while held and held_rows - held[0][1].num_rows >= TRAILER_ROWS:
            held_rows -= held[0][1].num_rows
            yield held.popleft()
        if held_rows > TRAILER_ROWS:
            row_no, batch = held[0]
            extra = held_rows - TRAILER_ROWS
            yield row_no, batch.slice(0, extra)
            held[0] = (row_no + extra, batch.slice(extra))
            held_rows = TRAILER_ROWS
    tail = [(row_no + i, row) for row_no, batch in held for i, row in enumerate(_rows(batch))]
    cut = _trailer_start(tail)
    if cut is not None:
        dropped = tail[cut:]
        totals = [row_no for row_no, row in dropped if is_total_label(_first_filled(row))]
        info.total_rows.extend(totals)
        rows_text = ", ".join(str(r) for r, _ in dropped)
        info.notes.append(f"total row(s) {rows_text} at the end dropped")
        keep_until = dropped[0][0]
    else:
        keep_until = None
    for row_no, batch in held:
        if keep_until is not None and row_no + batch.num_rows > keep_until:
            batch = batch.slice(0, max(0, keep_until - row_no))
        if batch.num_rows:
            yield row_no, batch


def _trailer_start(tail: list[tuple[int, list[Cell]]]) -> int | None:
    for index, (_, row) in enumerate(tail):
        if not is_total_label(_first_filled(row)):
            continue
        rest = tail[index + 1 :]
        if all(is_total_label(_first_filled(r)) or _filled_count(r) <= 1 for _, r in rest):
            return index
    return None


def _filled_mask(batch: pa.RecordBatch) -> pa.BooleanArray:
    """Rows with at least one filled cell; usually the first column alone proves it for all rows."""
    mask: pa.BooleanArray | None = None
    for column in batch.columns:
        empty = pc.or_(pc.equal(pc.binary_length(column), 0), pc.utf8_is_space(column))
        filled = pc.fill_null(pc.invert(empty), False)
        mask = filled if mask is None else pc.or_(mask, filled)
        if mask.true_count == batch.num_rows:
            break
    return mask if mask is not None else pa.array([False] * batch.num_rows)


def _rows(batch: pa.RecordBatch) -> list[list[Cell]]:
    columns = [c.to_pylist() for c in batch.columns]
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


def _first_filled(row: Sequence[Cell]) -> Cell:
    return next((c for c in row if not is_blank(c)), None)


def _filled_count(row: Sequence[Cell]) -> int:
    return sum(not is_blank(c) for c in row)


def _used_width(row: Sequence[Cell]) -> int:
    return max((i + 1 for i, c in enumerate(row) if not is_blank(c)), default=0)


def _row_text(row: Sequence[Cell]) -> str:
    return " ".join(_clean(c) for c in row if not is_blank(c))


def _clean(cell: Cell) -> str:
    if cell is None:
        return ""
    return _SPACES.sub(" ", _CJK_GAP.sub("", str(cell))).strip()
