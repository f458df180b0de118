"""Open any file an agency sends as a `TabularSource`: CSV/TSV, XLSX/XLS, Parquet, JSON Lines.

The content decides before the name does: files named `.xls` are often really XLSX, or tab-separated
text saved by a web export, and a renamed file should still be read for what it is.
"""

from __future__ import annotations

from pathlib import Path

from pubdata.errors import InputError
from pubdata.ingest.readers.csv import CsvSource
from pubdata.ingest.readers.excel import DEFAULT_MAX_UNCOMPRESSED_BYTES, ExcelSource
from pubdata.ingest.readers.jsonl import JsonLinesSource
from pubdata.ingest.readers.parquet import ParquetSource
from pubdata.ingest.source import TabularSource
from pubdata.messages import text as sentence

__all__ = ["CsvSource", "ExcelSource", "JsonLinesSource", "ParquetSource", "open_source", "sniff_format"]

_ZIP = b"PK\x03\x04"
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_PARQUET = b"PAR1"
_JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json"})
_EXCEL_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls"})


def sniff_format(path: Path) -> str:
    """One of "xlsx", "xls", "parquet", "jsonl", "csv", from magic bytes first, then the suffix."""
    if not path.is_file():
        raise InputError(sentence("no such file"), file=str(path))
    with path.open("rb") as handle:
        head = handle.read(512)
    suffix = path.suffix.lower()
    if head.startswith(_ZIP):
        if suffix in {".csv", ".txt", ".tsv", ".jsonl", ".parquet"}:
            raise InputError(sentence("the file is a ZIP archive, not text; unpack it first"), file=path.name)
        return "xlsx"
    if head.startswith(_OLE):
        return "xls"
    if head.startswith(_PARQUET):
        return "parquet"
    if suffix in _JSONL_SUFFIXES:
        return "jsonl"
    if suffix in _EXCEL_SUFFIXES and head.lstrip().lower().startswith((b"<", b"\xef\xbb\xbf<")):
        raise InputError(
            sentence("the file is a web page saved with an Excel name; open it and save as .xlsx"),
            file=path.name,
        )
    if suffix not in _EXCEL_SUFFIXES and suffix not in {".csv", ".tsv", ".txt"} and head.lstrip()[:1] == b"{":
        return "jsonl"
    return "csv"


def open_source(
    path: Path,
    *,
    sheet: str | None = None,
    max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES,
) -> TabularSource:
    """Open `path` with the reader its content calls for; `sheet` picks an Excel worksheet.

    `max_uncompressed_bytes` bounds how far an XLSX may expand (and so the memory it can take).
    """
    kind = sniff_format(path)
    if kind in {"xlsx", "xls"}:
        return ExcelSource(path, sheet=sheet, max_uncompressed_bytes=max_uncompressed_bytes)
    if kind == "parquet":
        return ParquetSource(path)
    if kind == "jsonl":
        return JsonLinesSource(path)
    source = CsvSource(path)
    if path.suffix.lower() in _EXCEL_SUFFIXES:
        source.info.notes.append(f"the file is named {path.suffix} but holds delimited text; read as text")
    return source
