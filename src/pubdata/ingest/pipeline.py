"""File → readers → mapping → normalise/validate → store, one streamed pass.

The whole source goes through one SQL statement (`SourceCheck`), planned once: a typed column per
field and, per field, a problem reason or NULL. What happens to bad rows is the policy's business
(`BadRowSorter`): `reject` stops the stream (the store then writes no version), `quarantine` writes
them to a Parquet file beside the data, `flag` keeps them with their reasons in `ROW_FLAGS`.
Every row read is counted as written or rejected, never dropped silently.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from pubdata import audit
from pubdata.catalog.classes import BadRowPolicy, EntryState, WriteMode
from pubdata.catalog.service import get_entry
from pubdata.db.models import CatalogEntry, DatasetVersion
from pubdata.errors import InputError, PubdataError, RuleViolation
from pubdata.ingest.check import SourceCheck
from pubdata.ingest.mapping import ColumnMapping, NoColumnMatches, fields_to_update, map_columns, matches_any
from pubdata.ingest.quality import ColumnQuality, QualityReport
from pubdata.ingest.readers import ExcelSource, open_source
from pubdata.ingest.readers.excel import sheets_with
from pubdata.ingest.sorting import BadRowSorter, Quarantine, TooManyRejected, refuse_too_many_rejected
from pubdata.ingest.source import TabularSource
from pubdata.messages import text as sentence
from pubdata.store.delta import DatasetStore, VersionSummary, arrow_schema
from pubdata.workspace import Workspace


@dataclass
class IngestResult:
    version: DatasetVersion
    quality: dict[str, Any]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _audit(workspace: Workspace, operator: str, code: str, outcome: str, **detail: Any) -> None:
    """In a transaction of its own, so that a refusal is on record although the ingest fails."""
    with workspace.sessions() as session, session.begin():
        audit.record(session, operator, "dataset.ingest", code, outcome, **detail)


def _admit(workspace: Workspace, entry_code: str, operator: str) -> CatalogEntry:
    with workspace.sessions() as session:
        entry = get_entry(session, entry_code)
    refusal: RuleViolation | None = None
    if entry.classified:
        refusal = RuleViolation(
            sentence("entry {code} is classified (涉密) and is never ingested", code=entry_code), "REQ-1"
        )
    elif entry.state is EntryState.RETIRED:
        refusal = RuleViolation(
            sentence("entry {code} is retired; its data can no longer be changed", code=entry_code)
        )
    if refusal is not None:
        _audit(workspace, operator, entry_code, "refused", reason=str(refusal), req=refusal.req)
        raise refusal
    return entry


def _map(source: TabularSource, entry: CatalogEntry, path: Path, sheet: str | None) -> ColumnMapping:
    """The file's columns mapped to the entry; a wrong first sheet names the sheets that fit."""
    try:
        return map_columns(source.info.columns, entry.fields, file=path.name, keys=entry.key_fields or ())
    except NoColumnMatches:
        if sheet is not None or not isinstance(source, ExcelSource):
            raise
        fitting = sheets_with(path, source.other_sheets, lambda columns: matches_any(columns, entry.fields))
        if not fitting:
            raise
        raise InputError(
            sentence(
                "sheet {sheet!r} has no column of the entry; the data seems to be on sheet {sheets}: "
                "choose it with --sheet",
                sheet=source.sheet,
                sheets=", ".join(repr(name) for name in fitting),
            ),
            file=path.name,
        ) from None


def ingest_file(
    workspace: Workspace,
    entry_code: str,
    path: Path,
    *,
    operator: str,
    mode: WriteMode | str | None = None,
    policy: BadRowPolicy | str | None = None,
    sheet: str | None = None,
    batch_rows: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    today: dt.date | None = None,
    max_reject_ratio: float | None = None,
    allow_empty: bool = False,
) -> IngestResult:
    """Ingest one file into an entry as one new version.

    `mode` defaults to upsert when the entry declares key fields, else replace. `on_progress`
    receives (bytes read, total bytes); bytes read is estimated from the batches' size. `today`
    (default: the date today) is when birth dates stop being plausible. Above `max_reject_ratio`
    (0–1, default: the setting) of rejected rows nothing is written; a replace that would leave a
    table holding rows empty needs `allow_empty`.
    """
    path = Path(path)
    entry = _admit(workspace, entry_code, operator)
    settings = workspace.settings.for_tenant(entry.provider.division_code)
    # Plain strings ("quarantine") are accepted too: scripts and the settings file speak in values.
    mode = WriteMode(mode) if mode else (WriteMode.UPSERT if entry.key_fields else WriteMode.REPLACE)
    policy = BadRowPolicy(policy or entry.bad_row_policy or settings.default_bad_row_policy)
    batch_rows = batch_rows or settings.ingest_batch_rows
    total_bytes = path.stat().st_size if path.exists() else 0
    limit = settings.ingest_max_reject_ratio if max_reject_ratio is None else max_reject_ratio
    if not 0 <= limit <= 1:
        raise PubdataError(sentence("the reject ratio is a share from 0 to 1, not {value}", value=limit))
    source = open_source(path, sheet=sheet)
    mapping = _map(source, entry, path, sheet)
    update_fields = fields_to_update(mapping, mode, settings.upsert_missing_columns, path.name)
    sha256 = _sha256(path)
    report = QualityReport(
        file=path.name,
        policy=policy.value,
        mode=mode.value,
        sha256=sha256,
        unmapped_columns=list(mapping.unmapped),
    )
    report.notes += [
        f"column {c!r} repeats a field already fed by another column; ignored" for c in mapping.duplicates
    ]
    report.columns = {m.field.name: ColumnQuality(m.field.name, m.source_column) for m in mapping.fields}
    kept = "its stored values are kept" if update_fields is not None else "left empty"
    report.notes += [f"field {name!r} has no column in the file; {kept}" for name in mapping.missing]
    check = SourceCheck(
        mapping, arrow_schema(entry), len(source.info.columns), today, marks_rounded=source.info.marks_rounded
    )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    quarantine = Quarantine(workspace.quarantine_dir / entry.code, f"{stamp}-{sha256[:12]}")
    sorter = BadRowSorter(
        mapping,
        source.info.columns,
        policy,
        report,
        quarantine,
        settings.quality_examples_per_column,
        warned=check.warned,
    )

    def stream() -> Iterator[pa.RecordBatch]:
        incoming = check.source(source.batches(batch_rows))
        for checked in check.run(incoming, batch_rows):
            rows = sorter.sort(checked)
            if on_progress is not None:
                on_progress(min(incoming.bytes_read, total_bytes), total_bytes)
            yield rows
        sorter.finish()
        report.describe_source(source.info)
        stored = quarantine.commit()
        if stored is not None:
            report.quarantine_file = str(stored.relative_to(workspace.home))
        refuse_too_many_rejected(report, limit)

    def summary() -> VersionSummary:
        return VersionSummary(
            report.rows_read, report.rows_written, report.rows_rejected, report.rows_flagged, report.to_dict()
        )

    store = DatasetStore(workspace.data_dir, workspace.sessions)
    try:
        version = store.write(
            entry,
            stream(),
            mode,
            operator=operator,
            source_file=str(path),
            source_sha256=sha256,
            summary=summary,
            update_fields=update_fields,
            allow_empty=allow_empty,
        )
    except BaseException as exc:
        if not isinstance(exc, TooManyRejected):  # its quarantine file is what the sender needs
            quarantine.discard()
        if isinstance(exc, PubdataError):
            _audit(
                workspace,
                operator,
                entry.code,
                "failed",
                reason=str(exc)[:500],
                file=path.name,
                sha256=sha256,
                rows_read=report.rows_read,
            )
        raise
    if on_progress is not None:
        on_progress(total_bytes, total_bytes)
    _audit(
        workspace,
        operator,
        entry.code,
        "ok",
        version=version.version,
        mode=mode.value,
        policy=policy.value,
        file=path.name,
        sha256=sha256,
        rows_read=report.rows_read,
        rows_written=report.rows_written,
        rows_rejected=report.rows_rejected,
        rows_flagged=report.rows_flagged,
    )
    return IngestResult(version, report.to_dict())
