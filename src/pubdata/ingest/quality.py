"""The quality report of one ingest: counts, problems by reason, masked examples, what the reader saw.

The report is stored with the version and shown to the person who sent the file, who may not be
allowed to see the data itself: every example value is masked (`mask_value`), never whole. Counting
is done on whole Arrow arrays (`value_counts`, `indices_nonzero`); only the few examples kept are
turned into Python values.

Example:
    >>> mask_value("33010319800101001X")
    '3301**********001X'
    >>> mask_value("13800138000")
    '13*******00'
    >>> mask_value("abc")
    '***'
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pubdata.ingest.source import SourceInfo


def mask_value(value: str) -> str:
    """Keep at most a quarter of the characters at each end (≤ 4), so the value cannot be read back."""
    keep = min(4, len(value) // 4)
    if keep == 0:
        return "*" * len(value)
    return value[:keep] + "*" * (len(value) - 2 * keep) + value[-keep:]


@dataclass
class Example:
    file: str
    row: int
    column: str
    reason: str
    value: str


@dataclass
class ColumnQuality:
    field: str
    source_column: str | None
    nulls: int = 0
    problems: dict[str, int] = dataclasses.field(default_factory=dict)
    examples: list[Example] = dataclasses.field(default_factory=list)

    def observe(
        self,
        problems: pa.Array | pa.ChunkedArray,
        raw: pa.Array | pa.ChunkedArray | None,
        rows: pa.Array | pa.ChunkedArray,
        file: str,
        limit: int,
    ) -> None:
        """Count the batch's problems of this column and keep the first few as masked examples.

        `rows` holds each record's file row number, `raw` the value as the file had it.
        """
        if problems.null_count == len(problems):
            return
        for item in pc.value_counts(problems.drop_null()).to_pylist():
            reason = str(item["values"])
            self.problems[reason] = self.problems.get(reason, 0) + int(item["counts"])
        room = limit - len(self.examples)
        if room <= 0:
            return
        indices = pc.indices_nonzero(pc.is_valid(problems))[:room]
        reasons = pc.take(problems, indices).to_pylist()
        values = pc.take(raw, indices).to_pylist() if raw is not None else [None] * len(reasons)
        numbers = pc.take(rows, indices).to_pylist()
        for row, reason, value in zip(numbers, reasons, values, strict=True):
            shown = mask_value(str(value)) if value is not None else ""
            self.examples.append(Example(file, row, self.source_column or self.field, str(reason), shown))


@dataclass
class QualityReport:
    file: str
    policy: str
    mode: str
    sha256: str = ""
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    rows_flagged: int = 0
    columns: dict[str, ColumnQuality] = dataclasses.field(default_factory=dict)
    unmapped_columns: list[str] = dataclasses.field(default_factory=list)
    source: dict[str, Any] = dataclasses.field(default_factory=dict)
    quarantine_file: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    def describe_source(self, info: SourceInfo) -> None:
        self.source = {
            "format": info.format,
            "encoding": info.encoding,
            "delimiter": info.delimiter,
            "header_row": info.header_row,
            "title_rows": list(info.title_rows),
            "total_rows_dropped": list(info.total_rows),
            "notes": list(info.notes),
        }

    def examples(self) -> list[Example]:
        return [example for column in self.columns.values() for example in column.examples]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, stored with the version."""
        return asdict(self)

    def render_text(self) -> str:
        """The report as a person reads it in a terminal."""
        lines = [
            f"File      {self.file}",
            f"SHA-256   {self.sha256}",
            f"Policy    {self.policy}   mode {self.mode}",
            f"Rows      read {self.rows_read}, written {self.rows_written}, "
            f"rejected {self.rows_rejected}, flagged {self.rows_flagged}",
        ]
        source = self.source
        if source:
            lines.append(
                f"Source    {source.get('format')}, encoding {source.get('encoding') or '-'}, "
                f"delimiter {source.get('delimiter')!r}, header row {source.get('header_row')}"
            )
            lines += [f"  title row: {text}" for text in source.get("title_rows", [])]
            if source.get("total_rows_dropped"):
                lines.append(f"  total rows dropped: {source['total_rows_dropped']}")
            lines += [f"  note: {note}" for note in source.get("notes", [])]
        if self.unmapped_columns:
            lines.append(f"Unmapped  {', '.join(self.unmapped_columns)}")
        lines += [f"Note      {note}" for note in self.notes]
        if self.quarantine_file:
            lines.append(f"Quarantine {self.quarantine_file}")
        for column in self.columns.values():
            if not column.problems and not column.nulls:
                continue
            problems = ", ".join(f"{reason}: {count}" for reason, count in sorted(column.problems.items()))
            lines.append(
                f"Column {column.field}: nulls {column.nulls}" + (f"; {problems}" if problems else "")
            )
            lines += [f"  row {e.row}: {e.reason} [{e.value}]" for e in column.examples]
        return "\n".join(lines)
