"""Which catalogue entries a SQL string reads, decided exactly as the rewrite will resolve them.

The access decision must be made for the entries the query really reads, before any policy exists:
a second, simpler parser would disagree with the rewrite on some corner (a CTE shadowing an entry,
``memory.main."PERSONS"``, a table inside a subquery in a join) and either refuse a fair query or,
worse, decide for fewer entries than the rewrite then reads. So this module runs the rewrite's own
checking rules and its `resolve_tables` with a policy that grants every name it is asked about and
writes the name down. CTE references are not entries; introspection names are refused with the
rewrite's message; a name that is no entry comes back as is, and the access decision refuses it.

Example:
    >>> referenced_entries("WITH p AS (SELECT * FROM main.People) SELECT * FROM p JOIN jobs USING (id)")
    ('jobs', 'people')
    >>> referenced_entries("WITH people AS (SELECT * FROM people) SELECT * FROM people")
    ('people',)
    >>> referenced_entries("SELECT * FROM duckdb_tables()")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pubdata.gateway.policy_types.PolicyViolation: ...
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from pubdata.gateway.policy_types import QueryPolicy, RewriteContext, TablePolicy
from pubdata.gateway.rewrite import RULES, Rule
from pubdata.gateway.rewrite.parse_single_query import parse_single_query
from pubdata.gateway.rewrite.resolve_tables import (
    ENTRY,
    INTROSPECTION_PREFIXES,
    INTROSPECTION_SCHEMAS,
    resolve_tables,
)


@dataclass(frozen=True)
class _GrantEveryName(QueryPolicy):
    """A policy that answers every lookup with an empty table policy, except the engine's own
    catalogue, so that `resolve_tables` marks each reference with the code it would look up."""

    asked: list[str] = field(default_factory=list)

    def lookup(self, entry_code: str) -> TablePolicy | None:
        parts = entry_code.lower().split(".")
        if (parts[0] in INTROSPECTION_SCHEMAS and len(parts) > 1) or parts[-1].startswith(
            INTROSPECTION_PREFIXES
        ):
            return None
        self.asked.append(entry_code)
        return TablePolicy.build(entry_code, {})


def _checks_before_resolution(rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
    """The rewrite's rules that look only at what the user wrote, in the rewrite's order."""
    return rules[: rules.index(resolve_tables)]


def referenced_entries(
    sql: str, dialect: str = "duckdb", *, rules: tuple[Rule, ...] = RULES
) -> tuple[str, ...]:
    """Entry codes (lower case, sorted, as `RewriteResult.tables`) that `rewrite` would resolve in `sql`.

    Raises `PolicyViolation` for everything the rewrite refuses before it needs a policy: several
    statements, side effects, forbidden functions, reserved names, introspection.
    """
    context = RewriteContext(_GrantEveryName(row_limit=None), dialect)
    expression = parse_single_query(sql, dialect)
    for rule in _checks_before_resolution(rules):
        expression = rule(expression, context)
    expression = resolve_tables(expression, context)
    codes = [t.meta[ENTRY] for t in expression.find_all(exp.Table) if ENTRY in t.meta]
    return tuple(sorted(set(codes)))
