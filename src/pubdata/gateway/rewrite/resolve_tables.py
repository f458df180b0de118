"""Decide, through the query's scopes, which table references are catalogue entries.

A reference is a CTE only when it is unqualified and a CTE of that name is visible from its scope
(earlier CTEs of the same WITH, or CTEs of enclosing queries) — so `WITH persons AS (SELECT * FROM
persons) …` reads the entry inside the CTE and the CTE outside it, as DuckDB does. Every other
reference must name a granted entry: quoting, case and the default `main` / `memory.main`
qualification are canonicalised away (DuckDB matches identifiers case-insensitively, quoted or
not; Spark has no `main` schema at all). Anything else is refused with the name as the user wrote
it, the same answer for an entry that does not exist and one that is not granted. Resolved
references are marked in their ``meta`` for `replace_tables`; a table node that no scope accounts
for is refused rather than left unchecked.

Example:
    >>> from sqlglot import exp
    >>> from pubdata.gateway.policy_types import QueryPolicy, RewriteContext, TablePolicy
    >>> from pubdata.gateway.rewrite.parse_single_query import parse_single_query
    >>> context = RewriteContext(QueryPolicy.of(TablePolicy.build("persons", {"name": exp.column("name")})))
    >>> query = resolve_tables(parse_single_query('SELECT * FROM memory.main."PERSONS"'), context)
    >>> query.find(exp.Table).meta[ENTRY]
    'persons'
    >>> resolve_tables(parse_single_query("SELECT * FROM information_schema.columns"), context)
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pubdata.gateway.policy_types.PolicyViolation: catalogue introspection is not available: ...
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import traverse_scope

from pubdata.gateway.policy_types import PolicyViolation, RewriteContext
from pubdata.messages import text

#: ``meta`` key on a resolved `Table`: the lower-case entry code it reads.
ENTRY = "pubdata_entry"
#: ``meta`` key on a `Table` that names a CTE.
CTE = "pubdata_cte"

#: Qualifiers that mean "the default database" in the engines the platform runs on.
DEFAULT_CATALOGS = frozenset({"memory"})
DEFAULT_SCHEMAS = frozenset({"main"})
#: Schemas and name prefixes through which engines describe themselves.
INTROSPECTION_SCHEMAS = frozenset({"information_schema", "pg_catalog", "system", "temp"})
INTROSPECTION_PREFIXES = ("duckdb_", "sqlite_", "pragma_", "pg_")


def resolve_tables(expression: exp.Expression, context: RewriteContext) -> exp.Expression:
    try:
        scopes = traverse_scope(expression)
    except SqlglotError:
        raise PolicyViolation(text("the query's structure is not supported")) from None
    accounted: set[int] = set()
    for scope in scopes:
        ctes = {name.lower() for name in scope.cte_sources}
        for table in scope.tables:
            accounted.add(id(table))
            if not table.args.get("db") and not table.args.get("catalog") and table.name.lower() in ctes:
                table.meta[CTE] = True
                continue
            table.meta[ENTRY] = _entry_code(table, context)
    for table in expression.find_all(exp.Table):
        if id(table) not in accounted:
            raise PolicyViolation(text("unsupported table reference: {table}", table=_written(table)))
    return expression


def _entry_code(table: exp.Table, context: RewriteContext) -> str:
    parts = [p.name for p in table.parts]
    lowered = [p.lower() for p in parts]
    if len(parts) == 3 and lowered[0] in DEFAULT_CATALOGS and lowered[1] in DEFAULT_SCHEMAS:
        parts = parts[2:]
    elif len(parts) == 2 and lowered[0] in DEFAULT_SCHEMAS:
        parts = parts[1:]
    policy = context.policy.lookup(".".join(parts))
    if policy is not None:
        return policy.entry_code.lower()
    if (lowered[0] in INTROSPECTION_SCHEMAS and len(lowered) > 1) or lowered[-1].startswith(
        INTROSPECTION_PREFIXES
    ):
        raise PolicyViolation(
            text("catalogue introspection is not available: {table}", table=_written(table))
        )
    raise PolicyViolation(text("unknown table or no grant for it: {table}", table=_written(table)))


def _written(table: exp.Table) -> str:
    return ".".join(p.name for p in table.parts)
