"""What the bad-row policy does with each checked batch, and the counts the quality report keeps.

`reject` stops at the first bad row (the store then writes no version), `quarantine` writes bad rows
as the file had them to a Parquet file beside the data, `flag` keeps them with their reasons in
`ROW_FLAGS`. Every row read is counted as written or rejected, never dropped silently. All of it is
done on whole Arrow arrays; only the few examples kept become Python values.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pubdata.catalog.classes import BadRowPolicy
from pubdata.errors import InputError, PubdataError
from pubdata.ingest import formulas
from pubdata.ingest.check import ROW_NUMBER
from pubdata.ingest.mapping import ColumnMapping
from pubdata.ingest.quality import QualityReport
from pubdata.messages import text as sentence
from pubdata.store.schema import ROW_FLAGS
from pubdata.store.stream import FILE_ROW

#: How many problems a rejected file's error message lists.
REJECT_EXAMPLES = 5


def _joined(flags: pa.Array, warnings: pa.Array) -> pa.Array:
    """The row flags stored: the problems, then the warnings, NULL for a row with neither."""
    both = pc.binary_join_element_wise(flags, warnings, pa.scalar("; "))  # NULL unless both are set
    return pc.coalesce(both, flags, warnings)


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
        table = table.add_column(0, "__file_row", rows).add_column(1, ROW_FLAGS, flags.cast(pa.string()))
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


def rejection(report: QualityReport, file: str, first: tuple[int, str] | None) -> InputError:
    shown = [f"row {e.row}, column {e.column}: {e.reason} [{e.value}]" for e in report.examples()]
    shown.sort(key=lambda text: int(text.split(",")[0].removeprefix("row ")))
    row, column = first if first else (None, None)
    return InputError(
        sentence(
            "bad rows and the policy is reject, so nothing was written: {examples}",
            examples="; ".join(shown[:REJECT_EXAMPLES]),
        ),
        file=file,
        row=row,
        column=column,
    )


class TooManyRejected(InputError):
    """More rows failed than the ingest allows: nothing was written, the quarantine file was kept.

    Above a share of bad rows the file is more likely the wrong one (another layout, a shifted
    column) than a good one with a few mistakes, and writing what is left would replace the data
    with a fraction of it. `report` is the quality report of the attempt.
    """

    def __init__(self, report: QualityReport, limit: float) -> None:
        share = report.rows_rejected / report.rows_read if report.rows_read else 1.0
        super().__init__(
            sentence(
                "{rejected} of {read} rows failed validation ({share}), more than the {limit} allowed, "
                "so nothing was written; the bad rows are kept in {quarantine}",
                rejected=report.rows_rejected,
                read=report.rows_read,
                share=f"{share:.1%}",
                limit=f"{limit:.1%}",
                quarantine=report.quarantine_file or "-",
            ),
            file=report.file,
        )
        self.report = report


def refuse_too_many_rejected(report: QualityReport, limit: float) -> None:
    """Raise `TooManyRejected` when the report's rejected share is above `limit` (0–1)."""
    if report.rows_rejected and report.rows_rejected > limit * report.rows_read:
        raise TooManyRejected(report, limit)


class BadRowSorter:
    """Applies one ingest's policy to checked batches (see `SourceCheck.run` for their columns)."""

    def __init__(
        self,
        mapping: ColumnMapping,
        source_columns: list[str],
        policy: BadRowPolicy,
        report: QualityReport,
        quarantine: Quarantine,
        examples_per_column: int,
        warned: list[int] | None = None,
    ) -> None:
        self.mapping = mapping
        self.source_columns = source_columns
        self.policy = policy
        self.report = report
        self.quarantine = quarantine
        self.limit = examples_per_column
        #: Fields (by position) whose warnings ``q<k>`` the checked batches carry.
        self.warned = warned or []
        self._fields = [m.field.name for m in mapping.fields]
        # The file row travels with each stored row, for the store's messages about keys.
        self._names = [*self._fields, ROW_FLAGS, FILE_ROW]
        self._typed = [f"t{k}" for k in range(len(mapping.fields))] + ["flags", ROW_NUMBER]
        self._last_row = -1

    def sort(self, checked: pa.RecordBatch) -> pa.RecordBatch:
        """The batch's rows to store, typed and named as fields; bad rows counted and handled."""
        report = self.report
        self._check_order(checked.column(ROW_NUMBER))
        report.rows_read += checked.num_rows
        rows = checked.select(self._typed).rename_columns(self._names)
        flags = checked.column("flags")
        bad_count = len(flags) - flags.null_count
        warnings = checked.column("warnings")
        if warnings.null_count < len(warnings):
            self._observe_warnings(checked)
            position = rows.schema.get_field_index(ROW_FLAGS)
            rows = rows.set_column(position, ROW_FLAGS, _joined(flags, warnings))
        if bad_count:
            self._observe(checked)
        for name in self._fields:
            report.columns[name].nulls += rows.column(name).null_count
        if bad_count and self.policy is BadRowPolicy.REJECT:
            first_bad = pc.index(pc.is_valid(flags), True).as_py()
            failing = next(
                m for k, m in enumerate(self.mapping.fields) if checked.column(f"p{k}")[first_bad].is_valid
            )
            row = checked.column(ROW_NUMBER)[first_bad].as_py()
            raise rejection(report, report.file, (row, failing.source_column or ""))
        if bad_count and self.policy is BadRowPolicy.QUARANTINE:
            bad = pc.is_valid(flags)
            raw = checked.select([f"r{i}" for i in range(len(self.source_columns))])
            self.quarantine.write(
                raw.rename_columns(self.source_columns).filter(bad),
                checked.column(ROW_NUMBER).filter(bad),
                flags.filter(bad),
            )
            rows = rows.filter(pc.invert(bad))
            report.rows_rejected += bad_count
        stored_flags = rows.column(ROW_FLAGS)
        report.rows_flagged += len(stored_flags) - stored_flags.null_count
        report.rows_written += rows.num_rows
        return rows

    def _check_order(self, numbers: pa.Array) -> None:
        """Refuse rows out of file order: "the first bad row" and the examples depend on it."""
        if len(numbers) == 0:
            return
        ascending = (
            len(numbers) < 2 or pc.all(pc.less(numbers.slice(0, len(numbers) - 1), numbers.slice(1))).as_py()
        )
        if not ascending or numbers[0].as_py() <= self._last_row:
            raise PubdataError("checked rows came back out of file order; the ingest was stopped")
        self._last_row = numbers[len(numbers) - 1].as_py()

    def _observe_warnings(self, checked: pa.RecordBatch) -> None:
        numbers = checked.column(ROW_NUMBER)
        for k in self.warned:
            item = self.mapping.fields[k]
            raw = checked.column(f"r{item.source_index}") if item.source_index is not None else None
            self.report.columns[item.field.name].observe(
                checked.column(f"q{k}"), raw, numbers, self.report.file, self.limit
            )

    def _observe(self, checked: pa.RecordBatch) -> None:
        numbers = checked.column(ROW_NUMBER)
        for k, item in enumerate(self.mapping.fields):
            raw = checked.column(f"r{item.source_index}") if item.source_index is not None else None
            self.report.columns[item.field.name].observe(
                checked.column(f"p{k}"), raw, numbers, self.report.file, self.limit
            )

    def finish(self) -> None:
        for column in self.report.columns.values():
            # Cells that did not parse are NULL in the typed column but were not empty in the file.
            column.nulls -= sum(
                n
                for reason, n in column.problems.items()
                if not reason.startswith("invalid") and reason != formulas.REASON
            )
            column.nulls = max(column.nulls, 0)
