"""The data subjects an answer served as stored, indexed by keyed hash for "who accessed X" (REQ-41).

A result column counts when it carries the name of a raw ``id_number`` / ``uscc`` field of an entry
read (``SELECT *``, ``SELECT id_number`` or ``SELECT t.id_number AS x`` at the top level). The hashes
are computed from the served values in DuckDB, batch by batch, never by reading the raw column a
second time: a masked or pseudonymised column indexes nothing.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
from sqlglot import exp

from pubdata import audit
from pubdata.gateway.export import formatting_cursor
from pubdata.gateway.rewrite import RewriteResult
from pubdata.workspace import Workspace


def subject_columns(schema: pa.Schema, result: RewriteResult, raw_fields: frozenset[str]) -> list[int]:
    """Positions of result columns that serve a raw identity number or credit code (see above)."""
    names = set(raw_fields)
    top = result.expression
    if isinstance(top, exp.Select):
        for projection in top.selects:
            column = projection.this if isinstance(projection, exp.Alias) else None
            if isinstance(column, exp.Column) and column.name.lower() in raw_fields:
                names.add(projection.alias.lower())
    return [i for i, name in enumerate(schema.names) if name.lower() in names]


class SubjectIndex:
    """Keyed hashes of the subjects in the served columns, computed by DuckDB batch by batch."""

    def __init__(self, workspace: Workspace, columns: list[int]) -> None:
        self.columns = columns
        self.hashes: set[str] = set()
        self._cursor: duckdb.DuckDBPyConnection | None = None
        if columns:
            self._cursor = formatting_cursor()
            for name, value in audit.subject_hash_variables(workspace.home).items():
                self._cursor.execute(f"SET VARIABLE {name} = $1", [value])

    def add(self, batch: pa.RecordBatch) -> None:
        if self._cursor is None or not batch.num_rows:
            return
        served = pa.table(
            [batch.column(i).cast(pa.string()) for i in self.columns], names=[f"c{i}" for i in self.columns]
        )
        parts = [
            exp.select(audit.subject_hash_sql(exp.column(f"c{i}")).as_("h")).from_("served")
            for i in self.columns
        ]
        union: exp.Query = parts[0]
        for part in parts[1:]:
            union = exp.union(union, part, distinct=False)
        query = (
            exp.select("h")
            .distinct()
            .from_(union.subquery("s"))
            .where(exp.column("h").is_(exp.null()).not_())
        )
        self._cursor.register("served", served)
        try:
            self.hashes.update(self._cursor.sql(query.sql("duckdb")).to_arrow_table().column("h").to_pylist())
        finally:
            self._cursor.unregister("served")

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
