"""Delimited text (CSV, TSV, `;` and `|` separated) streamed through pyarrow's CSV reader.

Row numbers count records the way a spreadsheet counts rows: the header is `info.header_row`
(after any title rows) and the first data record is `header_row + 1`. A quoted value with line
breaks in it is one record, so on such files a row number can be smaller than the text editor's
line number. Blank lines count as (empty, skipped) records.

The file is decoded by `Utf8Stream` in blocks (UTF-8 passes through), so memory follows the block
and batch size, not the file size. The parser runs on pyarrow's threads; when it fails, the file is
parsed again on one thread, where the failing row is known.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from pubdata.errors import InputError
from pubdata.ingest.readers.encoding import Utf8Stream, decode_sample, detect_encoding, read_sample
from pubdata.ingest.readers.layout import (
    LAYOUT_SAMPLE_ROWS,
    find_header,
    name_columns,
    table_body,
)
from pubdata.ingest.source import SourceInfo
from pubdata.messages import text as sentence

DELIMITERS = (",", "\t", ";", "|")
#: Bytes parsed at a time. Larger blocks grow the process's memory with the file: freed multi-MB
#: parse buffers are not given back (measured: 9 MB blocks, +125 MB at 66 MB of CSV, +390 MB at
#: 660 MB; 1 MB blocks, +70 MB for both). Batches are then at most this much text.
BLOCK_BYTES = 1 << 20


def sniff_delimiter(text: str) -> str:
    """The candidate that splits the sample's rows into the same number of fields most often."""
    best, best_score = ",", (0.0, 0)
    for delimiter in DELIMITERS:
        rows = list(islice(_records(text, delimiter), LAYOUT_SAMPLE_ROWS))
        widths = [len(row) for row, _ in rows if any(cell.strip() for cell in row)]
        multi = [w for w in widths if w > 1]
        if not multi:
            continue
        width, count = Counter(multi).most_common(1)[0]
        score = (count / len(widths), width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


class CsvSource:
    """A delimited text file; see the module docstring for how rows are numbered."""

    def __init__(self, path: Path, *, encoding: str | None = None, delimiter: str | None = None) -> None:
        self.path = path
        file = path.name
        sample = read_sample(path)
        if not sample.strip(b" \t\r\n\xef\xbb\xbf\xff\xfe\x00"):
            raise InputError(sentence("the file is empty"), file=file)
        chosen = encoding or detect_encoding(sample, file=file)
        text = decode_sample(sample, chosen, file=file).lstrip("\ufeff")
        if not text.strip():
            raise InputError(sentence("the file is empty"), file=file)
        sep = delimiter or sniff_delimiter(text)
        records = list(islice(_records(text, sep), LAYOUT_SAMPLE_ROWS))
        layout = find_header([row for row, _ in records])
        header, self._skip_lines = records[layout.index]
        names, notes = name_columns(header)
        self.info = SourceInfo(
            path=path,
            format="csv",
            columns=names,
            encoding=chosen,
            delimiter=sep,
            header_row=layout.index + 1,
            title_rows=layout.title_rows,
            notes=notes,
        )
        if layout.title_rows:
            self.info.notes.append(f"{len(layout.title_rows)} title row(s) above the header skipped")

    def batches(self, batch_rows: int) -> Iterator[tuple[int, pa.RecordBatch]]:
        yield from table_body(self._parsed(batch_rows), self.info, batch_rows)

    def _parsed(self, batch_rows: int) -> Iterator[tuple[int, pa.RecordBatch]]:
        info = self.info
        records = 0
        with Utf8Stream(self.path, info.encoding or "utf-8") as stream:
            try:
                for batch in self._reader(stream, batch_rows, threads=True, invalid=None):
                    yield info.header_row + 1 + records, batch
                    records += batch.num_rows
            except pa.ArrowInvalid:
                # Bytes that are not UTF-8 (a GBK row appended to a UTF-8 file) also break the
                # row they are in; the encoding is the problem to report.
                utf8 = stream.invalid_utf8() if stream.passthrough else None
                raise (utf8 or self._strict_error(batch_rows)) from None
            if stream.quotes % 2:
                row = self._unterminated_quote_row()
                if row is not None:
                    raise InputError(
                        sentence(
                            "the file ends inside a quoted value: the last line is truncated or a quote "
                            "is not closed"
                        ),
                        file=self.path.name,
                        row=row,
                        column=info.columns[-1],
                    )

    def _reader(
        self, stream: Utf8Stream, batch_rows: int, *, threads: bool, invalid: list[Any] | None
    ) -> pacsv.CSVStreamingReader:
        """pyarrow's streaming parser over `stream`, every column a string, bad rows into `invalid`.

        Without `invalid`, a bad row fails the parse as it is (the threaded pass: row numbers are
        unknown there anyway).
        """
        info = self.info

        def refuse(row: Any) -> str:
            if invalid is not None:
                invalid.append(row)
            return "error"

        return pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                use_threads=threads,
                block_size=BLOCK_BYTES,
                skip_rows=self._skip_lines,
                column_names=info.columns,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=info.delimiter,
                newlines_in_values=True,
                ignore_empty_lines=False,
                invalid_row_handler=refuse if invalid is not None else None,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(info.columns, pa.string()),
                strings_can_be_null=True,
                null_values=[""],
            ),
        )

    def _strict_error(self, batch_rows: int) -> InputError:
        """Parse again on one thread, where a bad row's number is known (error path only)."""
        invalid: list[Any] = []
        records = 0
        with Utf8Stream(self.path, self.info.encoding or "utf-8") as stream:
            try:
                for batch in self._reader(stream, batch_rows, threads=False, invalid=invalid):
                    records += batch.num_rows
            except pa.ArrowInvalid as exc:
                return self._parse_error(exc, invalid, self.info.header_row + 1 + records)
        return InputError(sentence("cannot parse the file"), file=self.path.name)  # pragma: no cover

    def _parse_error(self, exc: pa.ArrowInvalid, invalid: list[Any], near_row: int) -> InputError:
        file, columns = self.path.name, self.info.columns
        if invalid and invalid[0].number is not None:
            bad = invalid[0]
            row = self.info.header_row + bad.number - self._skip_lines
            got, want = bad.actual_columns, bad.expected_columns
            open_quote = bool((bad.text or "").count('"') % 2)
            if got < want:
                return InputError(
                    sentence(
                        "the row has {got} field(s) but the header has {want} (a quote is not closed)",
                        got=got,
                        want=want,
                    )
                    if open_quote
                    else sentence("the row has {got} field(s) but the header has {want}", got=got, want=want),
                    file=file,
                    row=row,
                    column=columns[got],
                )
            return InputError(
                sentence(
                    "the row has {got} fields but the header has only {want} (a quote is not closed)",
                    got=got,
                    want=want,
                )
                if open_quote
                else sentence("the row has {got} fields but the header has only {want}", got=got, want=want),
                file=file,
                row=row,
            )
        message = str(exc).removeprefix("CSV parse error: ")
        if "straddling" in message:
            return InputError(
                sentence(
                    "cannot parse the file near this row: "
                    "a record is larger than the read block; is a quote left open?"
                ),
                file=file,
                row=near_row,
            )
        return InputError(
            sentence("cannot parse the file near this row: {detail}", detail=message), file=file, row=near_row
        )

    def _unterminated_quote_row(self) -> int | None:
        """Re-read strictly to find the record a trailing open quote starts in (error path only)."""
        encoding = self.info.encoding or "utf-8"
        with self.path.open(encoding=encoding, newline="") as handle:
            reader = csv.reader(handle, delimiter=self.info.delimiter or ",", strict=True)
            count = 0
            try:
                for _ in reader:
                    count += 1
            except csv.Error as exc:
                return count + 1 if "end of data" in str(exc) else None
        return None


def _records(text: str, delimiter: str) -> Iterator[tuple[list[str], int]]:
    """Records of a sample with the number of physical lines read up to each one's end."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            yield row, reader.line_num
    except csv.Error:
        return
