"""JSON Lines (one object per line) read in chunks of lines, rows numbered by line.

The columns are the keys of the first records (up to `KEY_SAMPLE_LINES` lines), in the order they
first appear. A key that first shows up later is refused with its line number rather than dropped
or added silently: the columns are announced before the first batch, and losing a field without a
word would be worse than asking the sender to add it to an early record. A missing key is null.

Each chunk is decoded by one call of the C JSON parser; only a chunk that fails is re-read line by
line, to name the line. Blank lines are skipped; the line numbers of the others stay true.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from itertools import islice, pairwise
from pathlib import Path
from typing import Any

import pyarrow as pa

from pubdata.errors import InputError
from pubdata.ingest.source import SourceInfo
from pubdata.messages import text as sentence

KEY_SAMPLE_LINES = 1000


class JsonLinesSource:
    """A JSON Lines file; `info.header_row` is 0, so row numbers are line numbers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open("rb") as handle:
            head = list(islice(handle, KEY_SAMPLE_LINES))
        records = [r for _, r in self._parse(head, 1)]
        if not records:
            raise InputError(sentence("the file is empty"), file=path.name)
        columns = list(dict.fromkeys(key for record in records for key in record))
        self.info = SourceInfo(path=path, format="jsonl", columns=columns, encoding="utf-8", header_row=0)

    def batches(self, batch_rows: int) -> Iterator[tuple[int, pa.RecordBatch]]:
        known = set(self.info.columns)
        line_no = 1
        with self.path.open("rb") as handle:
            while lines := list(islice(handle, batch_rows)):
                for first, records in _runs(self._parse(lines, line_no)):
                    self._check_keys(records, known, first)
                    yield first, self._to_batch(records)
                line_no += len(lines)

    def _parse(self, lines: list[bytes], first: int) -> list[tuple[int, dict[str, Any]]]:
        if first == 1 and lines and lines[0].startswith(b"\xef\xbb\xbf"):
            lines = [lines[0][3:], *lines[1:]]
        kept = [(first + i, line) for i, line in enumerate(lines) if line.strip()]
        if not kept:
            return []
        try:
            values = json.loads(b"[" + b",".join(line for _, line in kept) + b"]")
        except (json.JSONDecodeError, UnicodeDecodeError):
            values = [self._parse_line(line, row) for row, line in kept]
        for (row, _), value in zip(kept, values, strict=True):
            if not isinstance(value, dict):
                raise InputError(
                    sentence("expected a JSON object, found {kind}", kind=type(value).__name__),
                    file=self.path.name,
                    row=row,
                )
        return [(row, value) for (row, _), value in zip(kept, values, strict=True)]

    def _parse_line(self, line: bytes, row: int) -> Any:
        try:
            return json.loads(line)
        except UnicodeDecodeError as exc:
            raise InputError(sentence("the line is not valid UTF-8"), file=self.path.name, row=row) from exc
        except json.JSONDecodeError as exc:
            raise InputError(
                sentence(
                    "invalid JSON at character {position}: {detail}", position=exc.pos + 1, detail=exc.msg
                ),
                file=self.path.name,
                row=row,
            ) from exc

    def _check_keys(self, records: list[dict[str, Any]], known: set[str], first: int) -> None:
        new = set().union(*records) - known
        if not new:
            return
        offset = next(i for i, record in enumerate(records) if not record.keys() <= known)
        key = sorted(set(records[offset]) - known)[0]
        raise InputError(
            sentence(
                "key {key!r} does not appear in the first {lines} lines, which define the "
                "columns; add it to an early record",
                key=key,
                lines=KEY_SAMPLE_LINES,
            ),
            file=self.path.name,
            row=first + offset,
        )

    def _to_batch(self, records: list[dict[str, Any]]) -> pa.RecordBatch:
        arrays = []
        for name in self.info.columns:
            values = [record.get(name) for record in records]
            try:
                arrays.append(pa.array(values, pa.string()))
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                arrays.append(pa.array([_text(v) for v in values], pa.string()))
        return pa.RecordBatch.from_arrays(arrays, names=self.info.columns)


def _runs(parsed: list[tuple[int, dict[str, Any]]]) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """Split at skipped blank lines so each batch numbers its rows consecutively."""
    if not parsed:
        return
    if parsed[-1][0] - parsed[0][0] + 1 == len(parsed):
        yield parsed[0][0], [record for _, record in parsed]
        return
    start, run = parsed[0][0], [parsed[0][1]]
    for (previous, _), (row, record) in pairwise(parsed):
        if row != previous + 1:
            yield start, run
            start, run = row, []
        run.append(record)
    yield start, run


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = format(Decimal(repr(value)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)
