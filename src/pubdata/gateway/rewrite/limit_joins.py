"""Refuse queries that combine more relations than a setting allows, before anything plans them.

A 1,300-way self-join parses quickly (sqlglot keeps joins flat, so the depth bound of
`parse_single_query` does not see it) but DuckDB's plan of it is 1,300 levels deep: the engine's
own check failed with a `RecursionError` reading it, and planning it would take the time budget
anyway. So joins are counted here, where the tree is still the user's: every join (a comma in FROM
is one), every set operation (``UNION``, ``EXCEPT``, ``INTERSECT``), and a CTE's joins once more for
each further place that reads it (the engine may inline it at each one).

Example:
    >>> from pubdata.gateway.policy_types import QueryLimits, QueryPolicy, RewriteContext
    >>> from pubdata.gateway.rewrite.parse_single_query import parse_single_query
    >>> context = RewriteContext(QueryPolicy(limits=QueryLimits(max_joins=2)))
    >>> query = parse_single_query("SELECT * FROM a JOIN b ON a.id = b.id, c")
    >>> limit_joins(query, context) is query
    True
    >>> limit_joins(parse_single_query("WITH x AS (SELECT * FROM a, b) SELECT * FROM x, x AS y"), context)
    Traceback (most recent call last):
    ...
    pubdata.gateway.policy_types.PolicyViolation: the query makes 3 joins; a query may make at most 2
"""

from __future__ import annotations

from sqlglot import exp

from pubdata.gateway.policy_types import PolicyViolation, RewriteContext
from pubdata.messages import text


def limit_joins(expression: exp.Expression, context: RewriteContext) -> exp.Expression:
    limit = context.policy.limits.max_joins
    joins = count_joins(expression)
    if joins > limit:
        raise PolicyViolation(
            text("the query makes {joins} joins; a query may make at most {limit}", joins=joins, limit=limit)
        )
    return expression


def count_joins(expression: exp.Expression) -> int:
    """Joins and set operations in `expression`, counting a CTE's once per extra reference."""
    total = _combinations(expression)
    for cte in expression.find_all(exp.CTE):
        inside = _combinations(cte.this)
        if inside:
            name = cte.alias_or_name.casefold()
            readers = [t for t in expression.find_all(exp.Table) if not t.db and t.name.casefold() == name]
            total += inside * max(len(readers) - 1, 0)
    return total


def _combinations(expression: exp.Expression) -> int:
    return sum(1 for n in expression.walk() if isinstance(n, exp.Join | exp.SetOperation))
