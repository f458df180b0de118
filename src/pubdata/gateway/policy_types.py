"""The policy a query runs under, as the rewrite, the engine and the de-identification library share it.

A grant compiles to one `TablePolicy` per catalogue entry: which columns a consumer sees and as what
expression over the raw data, and which rows. The rewrite replaces every reference to the entry by a
subquery built from it; the engine registers the raw relation under `internal_name`, a name in the
reserved ``__`` namespace that users can never write, so nothing but the policy subquery reaches it.

Example:
    >>> from sqlglot import exp
    >>> persons = TablePolicy.build(
    ...     "Persons",
    ...     {"name": exp.column("name"), "division_code": exp.column("division_code")},
    ...     row_filter=exp.column("division_code").like(exp.Literal.string("3301%")),
    ... )
    >>> persons.internal_name
    '__base_persons'
    >>> policy = QueryPolicy.of(persons, row_limit=100)
    >>> policy.lookup("PERSONS") is persons
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlglot import exp

from pubdata.errors import PubdataError

#: Identifiers starting with this prefix belong to the platform (base relations, pseudonym keys).
RESERVED_PREFIX = "__"
#: The column marking records under a flagged objection (REQ-12); users may read it, never name it.
DISPUTED_COLUMN = "_disputed"


class PolicyViolation(PubdataError):
    """The query asks for something the policy or the gateway does not allow.

    The message names what the user wrote (a function, table or statement kind) and never the
    policy's internals (masks, filters, keys, internal relation names).
    """


@dataclass(frozen=True)
class TablePolicy:
    """What one consumer may see of one catalogue entry."""

    #: The name users write in SQL (the catalogue entry code); matched case-insensitively.
    entry_code: str
    #: The relation the engine registers over the granted version's files (``__base_<entry_code>``).
    internal_name: str
    #: Visible column name → expression over the raw columns of `internal_name`; nothing else is visible.
    columns: Mapping[str, exp.Expression]
    #: Predicate over the raw columns that every visible row satisfies; ``None`` shows all rows.
    row_filter: exp.Expression | None = None
    #: Policy version, reported in response headers and the audit trail.
    version: int = 1
    #: Predicate over the raw key fields true for records under a flagged objection (REQ-12); the
    #: policy subquery then shows it as the boolean column `DISPUTED_COLUMN`. ``None``: no column.
    disputed: exp.Expression | None = None
    #: Keyed hashes of each raw row's data subjects (REQ-41), as expressions over the raw columns;
    #: `attach_subjects` carries them to the answer as hidden columns the gateway drops. Empty: none.
    subjects: tuple[exp.Expression, ...] = ()
    #: Predicate over the raw columns true for rows kept with quality flags at ingest (``--policy
    #: flag``); the rule `mark_flagged` then shows it as ``_quality_flagged``. ``None``: no column.
    quality_flagged: exp.Expression | None = None

    @classmethod
    def build(
        cls,
        entry_code: str,
        columns: Mapping[str, exp.Expression],
        *,
        row_filter: exp.Expression | None = None,
        version: int = 1,
        disputed: exp.Expression | None = None,
    ) -> TablePolicy:
        """A policy whose internal name follows the platform convention."""
        return cls(
            entry_code=entry_code,
            internal_name=f"{RESERVED_PREFIX}base_{entry_code.lower()}",
            columns=dict(columns),
            row_filter=row_filter,
            version=version,
            disputed=disputed,
        )


@dataclass(frozen=True)
class QueryLimits:
    """What one query may cost, read from its SQL (the ``query_max_*`` settings)."""

    #: Most joins and set operations (`limit_joins`).
    max_joins: int = 64
    #: Largest estimated size of the values it builds (`bound_generated_values`).
    max_generated_bytes: int = 64_000_000


@dataclass(frozen=True)
class QueryPolicy:
    """Everything one request may touch: the granted tables and the row limit."""

    #: Table policies keyed by lower-case entry code.
    tables: Mapping[str, TablePolicy] = field(default_factory=dict)
    #: Most rows a query may return; ``None`` leaves the query's own LIMIT (if any) alone.
    row_limit: int | None = 10_000
    #: The query's cost limits.
    limits: QueryLimits = field(default_factory=QueryLimits)

    @classmethod
    def of(cls, *tables: TablePolicy, row_limit: int | None = 10_000) -> QueryPolicy:
        return cls({t.entry_code.lower(): t for t in tables}, row_limit)

    def lookup(self, entry_code: str) -> TablePolicy | None:
        return self.tables.get(entry_code.lower())


@dataclass(frozen=True)
class RewriteContext:
    """What each rewrite rule receives besides the expression: the policy and the user's dialect."""

    policy: QueryPolicy
    #: The SQL dialect the user's query is written in (and the engine's, for function checks).
    dialect: str = "duckdb"
