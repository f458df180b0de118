"""What every reader gives the pipeline: string-typed record batches with their file row numbers.

Readers do no validation: they find the header, the encoding, the delimiter, title rows above the
header and a trailing 合计 (total) row, and report what they found in `SourceInfo.notes` so the
quality report can show it. Every value arrives as a string (or null) so that one normalisation and
validation step serves every format.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pyarrow as pa

#: Put by a reader before a value that a spreadsheet kept as a number of more than 15 digits. Excel
#: stores 15 significant digits, so such a cell (an identity number typed as a number) is already
#: rounded; its text can even pass a check character by chance. Only the cell type tells, and the
#: check turns the mark into a problem of the row. NUL cannot occur in an XLSX cell's text.
ROUNDED_MARK = "\x00"


@dataclass
class SourceInfo:
    path: Path
    format: str  # "csv" | "xlsx" | "xls" | "parquet" | "jsonl"
    columns: list[str]
    encoding: str | None = None
    delimiter: str | None = None
    #: 1-based row of the header in the file (a spreadsheet's row number; 1 for plain CSV).
    header_row: int = 1
    #: Text of title rows found above the header.
    title_rows: list[str] = field(default_factory=list)
    #: 1-based file rows dropped as 合计/总计 total rows.
    total_rows: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Whether values may carry `ROUNDED_MARK` (spreadsheets only).
    marks_rounded: bool = False


class TabularSource(Protocol):
    info: SourceInfo

    def batches(self, batch_rows: int) -> Iterator[tuple[int, pa.RecordBatch]]:
        """Yield (file row number of the batch's first record, batch of string columns)."""
        ...
