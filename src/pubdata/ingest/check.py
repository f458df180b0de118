"""The one SELECT that cleans, types and validates a whole source, planned once and streamed.

The reader's batches, with their file row numbers as a column, are registered once as an Arrow
stream; DuckDB pulls them on its own threads and hands back checked batches of the same rows in the
same order. Planning once matters: re-planning the statement per batch cost as much as running it.

Five stacked projections, innermost first: cleaned and normalised strings ``n<k>``, typed values
``t<k>``, problem reasons ``p<k>``, the row's flags, then the output, which keeps a source value
``r<i>`` only for flagged rows (the quality examples and the quarantine need those; clean rows
carry none). Source columns are renamed ``s<i>`` and field names travel as parameters, so no header
text is ever part of the SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pubdata.catalog.classes import FieldType
from pubdata.ingest import formulas
from pubdata.ingest.mapping import ColumnMapping
from pubdata.ingest.normalise import clean_needed, clean_sql, column_bytes, sql_string, typed_sql
from pubdata.ingest.source import ROUNDED_MARK
from pubdata.ingest.validators import Validator, get_validator, prepare

#: Timestamps in agency files carry no zone; they are Beijing time (no DST since 1991).
SOURCE_UTC_OFFSET_HOURS = 8
#: Column carrying each record's file row number through the query.
ROW_NUMBER = "__row"
MISSING = "missing required value"
#: `ROUNDED_MARK` in SQL, written as a call: a NUL character inside the statement's text is not safe.
_MARK_SQL = f"chr({ord(ROUNDED_MARK)})"
#: The problem of a value that a spreadsheet kept as a number of more than 15 digits.
ROUNDED = "a number cell of more than 15 digits, rounded by Excel"

_TYPE_REASONS: dict[FieldType, str] = {
    FieldType.INTEGER: "not an integer",
    FieldType.DECIMAL: "not a decimal",
    FieldType.DATE: "not a date",
    FieldType.TIMESTAMP: "not a timestamp",
    FieldType.BOOLEAN: "not a boolean",
}


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


def _field_sql(
    k: int,
    source: str | None,
    data_type: FieldType,
    arrow_type: pa.DataType,
    *,
    required: bool,
    validator_name: str | None,
    marked: bool = False,
) -> tuple[str, list[str], str]:
    """(cleaned expression, typed/derived expressions, problem expression) of field `k`.

    `marked`: the source's values may carry `ROUNDED_MARK`, which is a problem of its own.
    """
    sql_type = _sql_type(arrow_type)
    missing = sql_string(MISSING) if required else "NULL"
    if source is None:
        return "NULL::VARCHAR", [f"NULL::{sql_type} AS t{k}"], f"{missing}::VARCHAR"
    value_of = unmarked(source) if marked else source
    normalised = clean_sql(value_of)
    validator = get_validator(validator_name) if validator_name else None
    if validator is not None:
        normalised = validator.normalise_sql(f"({normalised})")
    # `w<i>` is false for a batch in which cleaning and normalising change nothing (see `_gate`).
    normalised = f"CASE WHEN w{source[1:]} THEN {normalised} ELSE {value_of} END"
    value = typed_sql(f"n{k}", data_type, sql_type)
    typed: list[str] = []
    derived = "NULL"
    if validator is not None and validator.derive_sql is not None:
        typed.append(f"{validator.derive_sql(f'n{k}')} AS d{k}")
        derived = f"d{k}"
    whens = [f"WHEN n{k} IS NULL THEN {missing}"]
    if marked:
        what = validator.label if validator is not None else "value"
        reason = sql_string(f"invalid {what} ({ROUNDED})")
        whens.insert(0, f"WHEN starts_with({source}, {_MARK_SQL}) THEN {reason}")
    if data_type is FieldType.TIMESTAMP:
        value = f"({value}) - INTERVAL {SOURCE_UTC_OFFSET_HOURS} HOUR"
    if data_type is FieldType.DECIMAL and pa.types.is_decimal(arrow_type):
        # DuckDB would round extra digits away; a value is refused rather than changed.
        # More than `scale` characters after the first point come before any such digit.
        scale = arrow_type.scale
        digits = sql_string("\\.[0-9]{" + str(scale) + "}[0-9]*[1-9]")
        too_fine = f"strlen(n{k}) - strpos(n{k}, '.') > {arrow_type.scale} AND regexp_matches(n{k}, {digits})"
        value = f"CASE WHEN {too_fine} THEN NULL ELSE {value} END"
        whens.append(
            f"WHEN t{k} IS NULL AND {too_fine} THEN {sql_string(f'more than {arrow_type.scale} decimals')}"
        )
    if data_type in _TYPE_REASONS:
        whens.append(f"WHEN t{k} IS NULL THEN {sql_string(_TYPE_REASONS[data_type])}")
    if validator is not None:
        label = sql_string(f"invalid {validator.label} (")
        whens.append(f"ELSE {label} || ({validator.problem_sql(f'n{k}', derived)}) || ')'")
    typed.append(f"{value} AS t{k}")
    return normalised, typed, f"CASE {' '.join(whens)} END"


#: Whether cleaning and normalising may change any value of a batch's source column.
Gate = Callable[[pa.Array], bool]


def unmarked(source: str) -> str:
    """The source value without the reader's `ROUNDED_MARK`."""
    return f"ltrim({source}, {_MARK_SQL})"


@dataclass
class SourceStream:
    """The reader's batches as the Arrow stream DuckDB pulls, keeping the reader's own exception.

    Each batch gets its file row numbers and, per gated source column ``s<i>``, a constant column
    ``w<i>`` saying whether cleaning can change anything in it. DuckDB reports an exception raised
    inside the stream as its own error with the message flattened; `error` keeps the original (an
    `InputError` naming the row) to be raised instead.
    """

    batches: Iterator[tuple[int, pa.RecordBatch]]
    width: int
    gates: dict[int, Gate] = field(default_factory=dict)
    bytes_read: int = 0
    error: BaseException | None = None

    @property
    def schema(self) -> pa.Schema:
        columns = [pa.field(f"s{i}", pa.string()) for i in range(self.width)]
        gates = [pa.field(f"w{i}", pa.bool_()) for i in self.gates]
        return pa.schema([*columns, *gates, pa.field(ROW_NUMBER, pa.int64())])

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self._numbered())

    def _numbered(self) -> Iterator[pa.RecordBatch]:
        schema, counting = self.schema, pa.array(range(0), pa.int64())
        constant = {flag: pa.array([flag], pa.bool_()) for flag in (False, True)}
        try:
            for first_row, raw in self.batches:
                size = raw.num_rows
                if len(counting) < size:
                    counting = pa.array(range(max(size, 2 * len(counting))), pa.int64())
                    constant = {flag: pa.array([flag] * len(counting), pa.bool_()) for flag in (False, True)}
                rows = pc.add(counting.slice(0, size), first_row)
                columns = [c if c.type == pa.string() else c.cast(pa.string()) for c in raw.columns]
                gates = [constant[gate(columns[i])].slice(0, size) for i, gate in self.gates.items()]
                self.bytes_read += raw.nbytes
                yield pa.RecordBatch.from_arrays([*columns, *gates, rows], schema=schema)
        except BaseException as exc:
            self.error = exc
            raise


def _gate(validator: Validator | None) -> Gate:
    def needed(values: pa.Array) -> bool:
        data = column_bytes(values)
        return clean_needed(values, data) or (
            validator is not None and validator.normalise_needed(values, data)
        )

    return needed


class SourceCheck:
    """The statement for one mapping and entry schema; `run` streams a source through it."""

    def __init__(
        self,
        mapping: ColumnMapping,
        schema: pa.Schema,
        width: int,
        today: dt.date | None = None,
        *,
        marks_rounded: bool = False,
    ) -> None:
        self.mapping = mapping
        self.width = width
        self.today = today
        self.gates: dict[int, Gate] = {}
        cleaned, typed, problems, warnings = [], [], [], []
        raw = unmarked if marks_rounded else str
        for k, item in enumerate(mapping.fields):
            f = item.field
            source = None if item.source_index is None else f"s{item.source_index}"
            if source is not None and formulas.applies(f):
                warnings.append((k, formulas.formula_sql(f"n{k}", raw(source))))
            if item.source_index is not None:
                self.gates[item.source_index] = _gate(get_validator(f.validator) if f.validator else None)
            n, t, p = _field_sql(
                k,
                source,
                FieldType(f.data_type),
                schema.field(f.name).type,
                required=bool(f.required),
                validator_name=f.validator,
                marked=marks_rounded,
            )
            cleaned.append(f"{n} AS n{k}")
            typed += t
            problems.append(f"{p} AS p{k}")
        count = len(mapping.fields)
        #: Fields whose values are looked at for formulas (free text): ``q<k>`` in the output.
        self.warned = [k for k, _ in warnings]
        ns, ts, ps = (", ".join(f"{c}{k}" for k in range(count)) for c in "ntp")
        qs = "".join(f", q{k}" for k in self.warned)
        ss = ", ".join(f"s{i}" for i in range(width))
        carried = f"{ROW_NUMBER}, {ss}" if ss else ROW_NUMBER
        flags = ", ".join(f"$l{k} || p{k}" for k in range(count))
        any_problem = " OR ".join(f"p{k} IS NOT NULL" for k in range(count))
        noted = ", ".join(f"$l{k} || q{k}" for k in self.warned)
        any_warning = " OR ".join(f"q{k} IS NOT NULL" for k in self.warned) or "FALSE"
        seen = "flags IS NOT NULL OR warnings IS NOT NULL"
        raws = ", ".join(f"CASE WHEN {seen} THEN {raw(f's{i}')} END AS r{i}" for i in range(width))
        self.labels = {f"l{k}": f"{m.field.name}: " for k, m in enumerate(mapping.fields)}
        self.sql = (
            f"SELECT {ROW_NUMBER}, {ts}, {ps}{qs}, flags, warnings{', ' + raws if raws else ''} FROM ("
            f"SELECT {carried}, {ts}, {ps}{qs}, "
            f"CASE WHEN {any_problem} THEN concat_ws('; ', {flags}) END AS flags, "
            f"CASE WHEN {any_warning} THEN concat_ws('; ', {noted or 'NULL'}) END AS warnings FROM ("
            f"SELECT {carried}, {ts}, {', '.join(problems)}"
            f"{''.join(f', {sql} AS q{k}' for k, sql in warnings)} FROM ("
            f"SELECT {carried}, {ns}, {', '.join(typed)} FROM ("
            f"SELECT {carried}, {', '.join(cleaned)} FROM pubdata_source))))"
        )

    def source(self, batches: Iterator[tuple[int, pa.RecordBatch]]) -> SourceStream:
        """The stream of a reader's (first row, batch) pairs, as `run` takes it."""
        return SourceStream(batches, self.width, dict(sorted(self.gates.items())))

    def run(self, source: SourceStream, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Checked batches: row number, ``t<k>``, ``p<k>``, ``q<k>``, ``flags``, ``warnings``, ``r<i>``.

        In file order. ``flags`` names the problems that make a row bad, ``warnings`` what is kept
        but flagged (`formulas`); raw values ``r<i>`` come with rows that have either.
        """
        con = duckdb.connect()
        try:
            divisions = any(m.field.validator == "division_code" for m in self.mapping.fields)
            prepare(con, self.today, with_villages=divisions)
            # An IN list of constants would become a join, and a join does not keep the row order.
            con.execute("SET disabled_optimizers = 'in_clause'")
            con.register("pubdata_source", source.reader())
            try:
                yield from con.sql(self.sql, params=self.labels).to_arrow_reader(batch_rows)
            except Exception:
                if source.error is not None:
                    raise source.error from None
                raise
        finally:
            con.close()
