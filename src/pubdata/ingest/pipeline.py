"""File → readers → mapping → normalise/validate → store, one streamed pass.

A batch is checked by one SQL statement over the registered Arrow batch (`BatchCheck`): a
typed column per field and, per field, a problem reason or NULL. What happens to bad rows is the
policy's business: `reject` stops the stream (the store then writes no version), `quarantine`
writes them to a Parquet file beside the data, `flag` keeps them with their reasons in `ROW_FLAGS`.
Every row read is counted as written or rejected, never dropped silently.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pubdata import audit
from pubdata.catalog.classes import BadRowPolicy, EntryState, FieldType, WriteMode
from pubdata.catalog.service import get_entry
from pubdata.db.models import CatalogEntry, DatasetVersion
from pubdata.errors import InputError, PubdataError, RuleViolation
from pubdata.ingest.mapping import ColumnMapping, map_columns
from pubdata.ingest.normalise import clean_sql, sql_string, typed_sql
from pubdata.ingest.quality import ColumnQuality, QualityReport
from pubdata.ingest.readers import open_source
from pubdata.ingest.validators import get_validator, prepare
from pubdata.store.delta import ROW_FLAGS, DatasetStore, VersionSummary, arrow_schema
from pubdata.workspace import Workspace

#: Timestamps in agency files carry no zone; they are Beijing time (no DST since 1991).
SOURCE_UTC_OFFSET_HOURS = 8
#: How many problems a rejected file's error message lists.
REJECT_EXAMPLES = 5

_TYPE_REASONS: dict[FieldType, str] = {
    FieldType.INTEGER: "not an integer",
    FieldType.DECIMAL: "not a decimal",
    FieldType.DATE: "not a date",
    FieldType.TIMESTAMP: "not a timestamp",
    FieldType.BOOLEAN: "not a boolean",
}
MISSING = "missing required value"


@dataclass
class IngestResult:
    version: DatasetVersion
    quality: dict[str, Any]


def _sql_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_decimal(arrow_type):
        return f"DECIMAL({arrow_type.precision}, {arrow_type.scale})"
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP"
    names = {
        pa.int64(): "BIGINT",
        pa.int32(): "INTEGER",
        pa.float64(): "DOUBLE",
        pa.date32(): "DATE",
        pa.bool_(): "BOOLEAN",
    }
    return names.get(arrow_type, "VARCHAR")


class BatchCheck:
    """The one SELECT that cleans, types and validates a batch; built once per ingest.

    Four stacked projections, innermost first: cleaned and normalised strings ``n<k>``, typed values
    ``t<k>``, problem reasons ``p<k>``, then the output with the row's flags. Source columns are
    renamed ``s<i>`` and field names travel as parameters, so no header text is ever part of the SQL.
    """

    def __init__(self, mapping: ColumnMapping, schema: pa.Schema, today: dt.date | None = None) -> None:
        self.mapping = mapping
        self.today = today
        self._con: duckdb.DuckDBPyConnection | None = None
        cleaned, typed, problems = [], [], []
        for k, item in enumerate(mapping.fields):
            f = item.field
            arrow_type = schema.field(f.name).type
            sql_type = _sql_type(arrow_type)
            data_type = FieldType(f.data_type)
            missing = sql_string(MISSING) if f.required else "NULL"
            if item.source_index is None:
                cleaned.append(f"NULL::VARCHAR AS n{k}")
                typed.append(f"NULL::{sql_type} AS t{k}")
                problems.append(f"{missing}::VARCHAR AS p{k}")
                continue
            normalised = clean_sql(f"s{item.source_index}")
            validator = get_validator(f.validator) if f.validator else None
            if validator is not None:
                normalised = validator.normalise_sql(f"({normalised})")
            cleaned.append(f"{normalised} AS n{k}")
            value = typed_sql(f"n{k}", data_type, sql_type)
            derived = "NULL"
            if validator is not None and validator.derive_sql is not None:
                typed.append(f"{validator.derive_sql(f'n{k}')} AS d{k}")
                derived = f"d{k}"
            whens = [f"WHEN n{k} IS NULL THEN {missing}"]
            if data_type is FieldType.TIMESTAMP:
                value = f"({value}) - INTERVAL {SOURCE_UTC_OFFSET_HOURS} HOUR"
            if data_type is FieldType.DECIMAL and pa.types.is_decimal(arrow_type):
                # DuckDB would round extra digits away; a value is refused rather than changed.
                too_fine = sql_string(f"\\.[0-9]{{{arrow_type.scale}}}[0-9]*[1-9]")
                value = f"CASE WHEN regexp_matches(n{k}, {too_fine}) THEN NULL ELSE {value} END"
                whens.append(
                    f"WHEN t{k} IS NULL AND regexp_matches(n{k}, {too_fine}) "
                    f"THEN {sql_string(f'more than {arrow_type.scale} decimals')}"
                )
            if data_type in _TYPE_REASONS:
                whens.append(f"WHEN t{k} IS NULL THEN {sql_string(_TYPE_REASONS[data_type])}")
            if validator is not None:
                label = sql_string(f"invalid {validator.label} (")
                whens.append(f"ELSE {label} || ({validator.problem_sql(f'n{k}', derived)}) || ')'")
            typed.append(f"{value} AS t{k}")
            problems.append(f"CASE {' '.join(whens)} END AS p{k}")
        count = len(mapping.fields)
        ns, ts, ps = (", ".join(f"{c}{k}" for k in range(count)) for c in "ntp")
        flags = ", ".join(f"$l{k} || p{k}" for k in range(count))
        self.labels = {f"l{k}": f"{m.field.name}: " for k, m in enumerate(mapping.fields)}
        self.sql = (
            f"SELECT {ts}, {ps}, NULLIF(concat_ws('; ', {flags}), '') AS flags FROM ("
            f"SELECT {ts}, {', '.join(problems)} FROM ("
            f"SELECT {ns}, {', '.join(typed)} FROM ("
            f"SELECT {', '.join(cleaned)} FROM pubdata_batch)))"
        )

    def connection(self) -> duckdb.DuckDBPyConnection:
        # Opened on first use: the store may pull batches on a thread of its own.
        if self._con is None:
            self._con = duckdb.connect()
            prepare(self._con, self.today)
        return self._con

    def run(self, raw: pa.RecordBatch) -> tuple[pa.Table, list[pa.ChunkedArray]]:
        """The typed rows (field names plus `ROW_FLAGS`) and each field's problem column."""
        con = self.connection()
        names = [f"s{i}" for i in range(raw.num_columns)]
        table = pa.Table.from_batches([raw.rename_columns(names)])
        con.register("pubdata_batch", table)
        try:
            result = con.sql(self.sql, params=self.labels).to_arrow_table()
        finally:
            con.unregister("pubdata_batch")
        problems = [result.column(f"p{k}") for k in range(len(self.mapping.fields))]
        rows = result.select([f"t{k}" for k in range(len(self.mapping.fields))] + ["flags"])
        rows = rows.rename_columns([m.field.name for m in self.mapping.fields] + [ROW_FLAGS])
        return rows, problems

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


class Quarantine:
    """Bad rows of one ingest, as the file had them, in one Parquet file written atomically."""

    def __init__(self, directory: Path, name: str) -> None:
        self.path = directory / f"{name}.parquet"
        self._tmp = directory / f".{name}.parquet.tmp"
        self._writer: pq.ParquetWriter | None = None

    def write(self, raw: pa.RecordBatch, rows: pa.Array, flags: pa.Array) -> None:
        table = pa.Table.from_batches([raw]).cast(
            pa.schema([pa.field(n, pa.string()) for n in raw.schema.names])
        )
        table = table.add_column(0, "__file_row", rows).add_column(1, ROW_FLAGS, flags)
        if self._writer is None:
            self._tmp.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self._tmp, table.schema)
        self._writer.write_table(table)

    def commit(self) -> Path | None:
        if self._writer is None:
            return None
        self._writer.close()
        self._tmp.replace(self.path)
        return self.path

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._tmp.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _rejection(report: QualityReport, file: str, first: tuple[int, str] | None) -> InputError:
    shown = [f"row {e.row}, column {e.column}: {e.reason} [{e.value}]" for e in report.examples()]
    shown.sort(key=lambda text: int(text.split(",")[0].removeprefix("row ")))
    row, column = first if first else (None, None)
    return InputError(
        "bad rows and the policy is reject, so nothing was written: " + "; ".join(shown[:REJECT_EXAMPLES]),
        file=file,
        row=row,
        column=column,
    )


def _audit(workspace: Workspace, operator: str, code: str, outcome: str, **detail: Any) -> None:
    """In a transaction of its own, so that a refusal is on record although the ingest fails."""
    with workspace.sessions() as session, session.begin():
        audit.record(session, operator, "dataset.ingest", code, outcome, **detail)


def _admit(workspace: Workspace, entry_code: str, operator: str) -> CatalogEntry:
    with workspace.sessions() as session:
        entry = get_entry(session, entry_code)
    refusal: RuleViolation | None = None
    if entry.classified:
        refusal = RuleViolation(f"entry {entry_code} is classified (涉密) and is never ingested", "REQ-1")
    elif entry.state is EntryState.RETIRED:
        refusal = RuleViolation(f"entry {entry_code} is retired; its data can no longer be changed")
    if refusal is not None:
        _audit(workspace, operator, entry_code, "refused", reason=str(refusal), req=refusal.req)
        raise refusal
    return entry


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
) -> IngestResult:
    """Ingest one file into an entry as one new version.

    `mode` defaults to upsert when the entry declares key fields, else replace. `on_progress`
    receives (bytes read, total bytes); bytes read is estimated from the batches' size. `today`
    (default: the date today) is when birth dates stop being plausible.
    """
    path = Path(path)
    entry = _admit(workspace, entry_code, operator)
    settings = workspace.settings.for_tenant(entry.provider.division_code)
    # Plain strings ("quarantine") are accepted too: scripts and the settings file speak in values.
    mode = WriteMode(mode) if mode else (WriteMode.UPSERT if entry.key_fields else WriteMode.REPLACE)
    policy = BadRowPolicy(policy or entry.bad_row_policy or settings.default_bad_row_policy)
    batch_rows = batch_rows or settings.ingest_batch_rows
    total_bytes = path.stat().st_size if path.exists() else 0
    source = open_source(path, sheet=sheet)
    mapping = map_columns(source.info.columns, entry.fields, file=path.name)
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
    report.notes += [f"field {name!r} has no column in the file; left empty" for name in mapping.missing]
    check = BatchCheck(mapping, arrow_schema(entry), today)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    quarantine = Quarantine(workspace.quarantine_dir / entry.code, f"{stamp}-{sha256[:12]}")
    limit = settings.quality_examples_per_column

    def stream() -> Iterator[pa.RecordBatch]:
        done = 0
        for first_row, raw in source.batches(batch_rows):
            rows, problems = check.run(raw)
            report.rows_read += raw.num_rows
            for item, problem in zip(mapping.fields, problems, strict=True):
                column = report.columns[item.field.name]
                raw_values = raw.column(item.source_index) if item.source_index is not None else None
                column.observe(problem, raw_values, first_row, path.name, limit)
                column.nulls += rows.column(item.field.name).null_count
            flags = rows.column(ROW_FLAGS)
            bad = pc.is_valid(flags)
            bad_count = flags.length() - flags.null_count
            if bad_count and policy is BadRowPolicy.REJECT:
                first_bad = pc.index(bad, True).as_py()
                failing = next(
                    m for m, p in zip(mapping.fields, problems, strict=True) if p[first_bad].is_valid
                )
                raise _rejection(report, path.name, (first_row + first_bad, failing.source_column or ""))
            if bad_count and policy is BadRowPolicy.QUARANTINE:
                numbers = pc.add(pa.array(range(raw.num_rows), pa.int64()), first_row)
                quarantine.write(
                    raw.filter(bad.combine_chunks()),
                    numbers.filter(bad.combine_chunks()),
                    flags.filter(bad).combine_chunks(),
                )
                rows = rows.filter(pc.invert(bad))
                report.rows_rejected += bad_count
            else:
                report.rows_flagged += bad_count
            report.rows_written += rows.num_rows
            done += raw.nbytes
            if on_progress is not None:
                on_progress(min(done, total_bytes), total_bytes)
            yield from rows.to_batches()
        for column in report.columns.values():
            # Cells that did not parse are NULL in the typed column but were not empty in the file.
            column.nulls -= sum(
                n for reason, n in column.problems.items() if not reason.startswith("invalid")
            )
            column.nulls = max(column.nulls, 0)
        report.describe_source(source.info)
        stored = quarantine.commit()
        if stored is not None:
            report.quarantine_file = str(stored.relative_to(workspace.home))

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
        )
    except BaseException as exc:
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
    finally:
        check.close()
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
