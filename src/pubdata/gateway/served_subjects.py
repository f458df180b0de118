"""The data subjects an answer served, indexed by keyed hash for "who accessed X" (REQ-41).

Two routes, both computed by the engine, never by a Python loop over rows:

- where the answer's rows are still records, the rewrite carries the keyed hash of each row's raw
  subject key out as hidden ``__subject_*`` columns (`attach_subjects`, fed by `with_subjects`): the
  consumer who saw a record with its identity number masked or pseudonymised is indexed too. The
  columns are read here and dropped (`visible`) before anything is written out;
- a served column whose lineage (`RewriteResult.served`) includes a raw ``id_number`` / ``uscc``
  field — however renamed, wrapped or grouped — has its served values hashed batch by batch.

Aggregated answers (GROUP BY, DISTINCT, set operations) carry no per-row subject; the audit event
then lists the entries whose subjects were aggregated (`aggregated_subjects`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from pubdata import audit
from pubdata.db.models import CatalogEntry
from pubdata.gateway.json_cells import formatting_cursor
from pubdata.gateway.policy_summary import SUBJECT_KINDS
from pubdata.gateway.policy_types import QueryPolicy
from pubdata.gateway.rewrite import RewriteResult
from pubdata.gateway.rewrite.attach_subjects import SUBJECT_PREFIX
from pubdata.workspace import Workspace


def with_subjects(policy: QueryPolicy, entries: Mapping[str, CatalogEntry]) -> QueryPolicy:
    """`policy` with each entry's subject keys (its raw identity-number and credit-code fields) as
    keyed-hash expressions for `attach_subjects`."""
    tables = dict(policy.tables)
    for code, table in policy.tables.items():
        entry = entries.get(code)
        if entry is None:
            continue
        keys = tuple(
            audit.subject_hash_sql(exp.column(f.name)) for f in entry.fields if f.pii_kind in SUBJECT_KINDS
        )
        if keys:
            tables[code] = replace(table, subjects=keys)
    return QueryPolicy(tables, policy.row_limit)


def aggregated_subjects(policy: QueryPolicy, result: RewriteResult) -> list[str]:
    """Entries read whose subjects the answer's rows cannot be attributed to one by one."""
    carried = set(result.subject_columns.values())
    return [c for c in result.tables if policy.tables[c].subjects and c not in carried]


def served_fields(result: RewriteResult, masked: Mapping[str, str]) -> dict[str, list[str]]:
    """Per answer column, the ``entry.field`` it derives from, with ``=function`` where the field
    was de-identified (`masked` as `PolicySummary.masked` has it): the audit's ``served_fields``."""
    return {
        column.name: sorted(
            f"{code}.{name}" + (f"={masked[f'{code}.{name}']}" if f"{code}.{name}" in masked else "")
            for code, name in column.fields
        )
        for column in result.served
    }


def visible(schema: pa.Schema) -> list[int]:
    """Positions of the columns the caller may see: all but the hidden subject columns."""
    return [i for i, name in enumerate(schema.names) if not name.startswith(SUBJECT_PREFIX)]


def subject_columns(schema: pa.Schema, result: RewriteResult, raw_fields: frozenset[str]) -> list[int]:
    """Positions of served columns whose values are raw identity numbers or credit codes that the
    hidden subject columns do not already index."""
    shown = visible(schema)
    served = result.served
    if len(served) == len(shown):  # the usual case: the trace lists the columns in order
        lineage = [served[k].fields for k in range(len(shown))]
    else:  # `SELECT * … USING (…)` and the like fold columns: match by name
        by_name: dict[str, set[tuple[str, str]]] = {}
        for column in served:
            by_name.setdefault(column.name.lower(), set()).update(column.fields)
        lineage = [frozenset(by_name.get(schema.names[i].lower(), ())) for i in shown]
    # Only columns carrying nothing but raw keys: the hash of `to_json(t)` would match no one. Keys
    # of entries whose rows carry their hidden subject hashes are indexed already: not twice.
    carried = set(result.subject_columns.values())
    return [
        i
        for i, fields in zip(shown, lineage, strict=True)
        if fields
        and all(f.lower() in raw_fields for _, f in fields)
        and not all(code in carried for code, _ in fields)
    ]


class SubjectIndex:
    """Keyed hashes of the subjects an answer served, gathered batch by batch."""

    def __init__(
        self, workspace: Workspace, schema: pa.Schema, columns: list[int], hashed: Collection[str] = ()
    ) -> None:
        self.columns = columns
        #: The top's hidden hash columns (`RewriteResult.subject_columns`); a star may bring up other
        #: hidden columns, raw keys from below the top: they are dropped, never indexed.
        self.hidden = [i for i, name in enumerate(schema.names) if name in hashed]
        self.shown = visible(schema)
        self.schema = pa.schema([schema.field(i) for i in self.shown])
        #: Distinct hashes per batch, merged by `hashes`: Arrow arrays, never a Python str per subject
        #: (a set of a million str cost ~1.5 s of a 1 M-row export, measured).
        self._parts: list[pa.Array] = []
        self._merged = False
        self._cursor: duckdb.DuckDBPyConnection | None = None
        if columns:
            self._cursor = formatting_cursor()
            for name, value in audit.subject_hash_variables(workspace.home).items():
                self._cursor.execute(f"SET VARIABLE {name} = $1", [value])

    def add(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Index `batch`; what may be served of it (the hidden columns dropped)."""
        if not batch.num_rows:
            return batch.select(self.shown)
        for i in self.hidden:  # already keyed hashes, computed by the engine
            self._keep(pc.unique(batch.column(i)))
        if self._cursor is not None:
            self._hash_served(self._cursor, batch)
        return batch.select(self.shown)

    def _hash_served(self, cursor: duckdb.DuckDBPyConnection, batch: pa.RecordBatch) -> None:
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
        cursor.register("served", served)
        try:
            self._keep(cursor.sql(query.sql("duckdb")).to_arrow_table().column("h"))
        finally:
            cursor.unregister("served")

    def _keep(self, hashes: pa.Array | pa.ChunkedArray) -> None:
        chunks = hashes.chunks if isinstance(hashes, pa.ChunkedArray) else [hashes]
        self._parts.extend(chunk.cast(pa.string()) for chunk in chunks)
        self._merged = False
        if len(self._parts) > 64:  # a join may serve the same subjects again and again: stay bounded
            self._parts = [self.hashes]

    @property
    def hashes(self) -> pa.Array:
        """The distinct keyed hashes gathered so far, as an Arrow string array without nulls."""
        if not self._merged:
            self._parts = [pc.drop_null(pc.unique(pa.chunked_array(self._parts, pa.string())))]
            self._merged = True
        return self._parts[0]

    def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()
