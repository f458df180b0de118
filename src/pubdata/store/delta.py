"""Delta tables per entry: write modes, version index, time travel, change feed.

(Interface fixed; implementation pending.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session, sessionmaker

from pubdata.catalog.classes import WriteMode
from pubdata.db.models import CatalogEntry, DatasetVersion

#: Column present in every table: NULL for clean rows, the reasons for rows accepted with flags.
ROW_FLAGS = "__row_flags"


@dataclass
class VersionSummary:
    """What the index records about a write once its stream has been consumed."""

    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    rows_flagged: int = 0
    quality: dict[str, Any] = field(default_factory=dict)


def arrow_schema(entry: CatalogEntry) -> pa.Schema:
    """The Delta table schema of an entry: its fields in order, typed, plus `ROW_FLAGS`."""
    raise NotImplementedError


class DatasetStore:
    def __init__(self, data_dir: Any, sessions: sessionmaker[Session]) -> None:
        raise NotImplementedError

    def write(
        self,
        entry: CatalogEntry,
        batches: Iterable[pa.RecordBatch],
        mode: WriteMode,
        *,
        operator: str,
        source_file: str = "",
        source_sha256: str = "",
        summary: Callable[[], VersionSummary] = VersionSummary,
    ) -> DatasetVersion:
        """Stream `batches` (of `arrow_schema(entry)`) into one new version and index it."""
        raise NotImplementedError

    def versions(self, session: Session, entry: CatalogEntry) -> list[DatasetVersion]:
        raise NotImplementedError

    def file_uris(self, entry: CatalogEntry, version: int | None = None) -> list[str]:
        raise NotImplementedError

    def read(
        self, entry: CatalogEntry, version: int | None = None, columns: list[str] | None = None
    ) -> pa.Table:
        raise NotImplementedError

    def changes(self, entry: CatalogEntry, start: int, end: int | None = None) -> pa.Table:
        raise NotImplementedError
