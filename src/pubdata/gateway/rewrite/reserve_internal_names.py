"""Refuse identifiers in the platform's reserved ``__`` namespace.

The engine registers each granted entry's raw rows as ``__base_<code>``, and pseudonym keys live in
``__pk_…`` variables; a user who could name either — as a table, a column, an alias or a CTE —
could read around the policy subquery or shadow it. Matching is case-insensitive, as in DuckDB.

Example:
    >>> from pubdata.gateway.policy_types import QueryPolicy, RewriteContext
    >>> from pubdata.gateway.rewrite.parse_single_query import parse_single_query
    >>> context = RewriteContext(QueryPolicy())
    >>> reserve_internal_names(parse_single_query('SELECT * FROM "__BASE_persons"'), context)
    Traceback (most recent call last):
    ...
    pubdata.gateway.policy_types.PolicyViolation: names starting with __ are reserved: __BASE_persons
"""

from __future__ import annotations

from sqlglot import exp

from pubdata.gateway.policy_types import RESERVED_PREFIX, PolicyViolation, RewriteContext


def reserve_internal_names(expression: exp.Expression, context: RewriteContext) -> exp.Expression:
    for identifier in expression.find_all(exp.Identifier):
        if identifier.name.lstrip().startswith(RESERVED_PREFIX):
            raise PolicyViolation(f"names starting with {RESERVED_PREFIX} are reserved: {identifier.name}")
    return expression
