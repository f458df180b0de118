"""File → readers → mapping → normalise/validate → store, one streamed pass.

(Interface fixed; implementation pending.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pubdata.catalog.classes import BadRowPolicy, WriteMode
from pubdata.db.models import DatasetVersion
from pubdata.workspace import Workspace


@dataclass
class IngestResult:
    version: DatasetVersion
    quality: dict[str, Any]


def ingest_file(
    workspace: Workspace,
    entry_code: str,
    path: Path,
    *,
    operator: str,
    mode: WriteMode | None = None,
    policy: BadRowPolicy | None = None,
    sheet: str | None = None,
    batch_rows: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestResult:
    """Ingest one file into an entry as one new version.

    `mode` defaults to upsert when the entry declares key fields, else replace. `on_progress`
    receives (bytes read, total bytes).
    """
    raise NotImplementedError
