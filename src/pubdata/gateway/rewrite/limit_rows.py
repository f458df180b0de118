"""Cap the rows a query returns at the policy's row limit.

A smaller LIMIT the user wrote is kept, a larger one is lowered, a missing one is added. A limit
that is not a plain whole number (an expression, a percentage, `ALL`, FETCH FIRST) is left to the
user's query, which is then wrapped in an outer query carrying the cap.

Example:
    >>> from pubdata.gateway.policy_types import QueryPolicy, RewriteContext
    >>> from pubdata.gateway.rewrite.parse_single_query import parse_single_query
    >>> context = RewriteContext(QueryPolicy(row_limit=100))
    >>> limit_rows(parse_single_query("SELECT 1 UNION SELECT 2"), context).sql()
    'SELECT 1 UNION SELECT 2 LIMIT 100'
    >>> limit_rows(parse_single_query("SELECT 1 LIMIT 5000"), context).sql()
    'SELECT 1 LIMIT 100'
    >>> limit_rows(parse_single_query("SELECT 1 LIMIT 10%"), context).sql("duckdb")
    'SELECT * FROM (SELECT 1 LIMIT 10 PERCENT) AS __limited LIMIT 100'
"""

from __future__ import annotations

from sqlglot import exp

from pubdata.gateway.policy_types import RESERVED_PREFIX, RewriteContext


def limit_rows(expression: exp.Expression, context: RewriteContext) -> exp.Expression:
    cap = context.policy.row_limit
    if cap is None:
        return expression
    while isinstance(expression, exp.Subquery) and not any(
        v for k, v in expression.args.items() if k != "this"
    ):
        expression = expression.this
    if not isinstance(expression, exp.Query):
        return expression
    limit = expression.args.get("limit")
    if not limit and not expression.args.get("fetch") and not isinstance(expression, exp.Subquery):
        return expression.limit(cap, copy=False)
    written = _whole_number(limit)
    if written is not None and limit is not None:
        limit.set("expression", exp.Literal.number(min(written, cap)))
        return expression
    return exp.select("*").from_(expression.subquery(f"{RESERVED_PREFIX}limited")).limit(cap, copy=False)


def _whole_number(limit: exp.Expression | None) -> int | None:
    """The LIMIT's row count when it is a plain non-negative integer literal."""
    if limit is None or (limit.args.get("limit_options") and limit.args["limit_options"].args.get("percent")):
        return None
    value = limit.args.get("expression")
    if isinstance(value, exp.Literal) and value.is_int:
        return int(value.this)
    return None
