"""Refuse recursive CTEs.

A recursive CTE has no depth bound that can be enforced the same way on DuckDB and on Spark (Spark
caps recursion with a session setting, DuckDB not at all), and walking hierarchies is not what
sharing catalogue data needs; the engine's time budget and memory limit bound everything else.

Example:
    >>> from pubdata.gateway.policy_types import QueryPolicy, RewriteContext
    >>> from pubdata.gateway.rewrite.parse_single_query import parse_single_query
    >>> query = parse_single_query(
    ...     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT * FROM n"
    ... )
    >>> forbid_recursion(query, RewriteContext(QueryPolicy()))
    Traceback (most recent call last):
    ...
    pubdata.gateway.policy_types.PolicyViolation: recursive CTEs are not allowed
"""

from __future__ import annotations

from sqlglot import exp

from pubdata.gateway.policy_types import PolicyViolation, RewriteContext
from pubdata.messages import text


def forbid_recursion(expression: exp.Expression, context: RewriteContext) -> exp.Expression:
    if any(w.args.get("recursive") for w in expression.find_all(exp.With)):
        raise PolicyViolation(text("recursive CTEs are not allowed"))
    return expression
