"""Check the finished query once more: every relation it reads is a CTE or a policy's raw relation
read from inside that policy's subquery.

This is the rewrite's own safety net: whatever a future rule or a new sqlglot node might let
through, a query that would reach a table any other way is refused instead of executed.

Example:
    >>> from sqlglot import exp, parse_one
    >>> from pubdata.gateway.policy_types import QueryPolicy, RewriteContext
    >>> verify_enforced(parse_one("SELECT * FROM __base_persons"), RewriteContext(QueryPolicy()))
    Traceback (most recent call last):
    ...
    pubdata.gateway.policy_types.PolicyViolation: the query reads a table outside its policy
"""

from __future__ import annotations

from sqlglot import exp

from pubdata.gateway.policy_types import PolicyViolation, RewriteContext
from pubdata.gateway.rewrite.replace_tables import POLICY
from pubdata.gateway.rewrite.resolve_tables import CTE
from pubdata.messages import text


def verify_enforced(expression: exp.Expression, context: RewriteContext) -> exp.Expression:
    for table in expression.find_all(exp.Table):
        if table.meta.get(CTE) and not table.args.get("db"):
            continue
        owner = table.find_ancestor(exp.Subquery)
        while owner is not None and POLICY not in owner.meta:
            owner = owner.find_ancestor(exp.Subquery)
        policy = context.policy.lookup(owner.meta[POLICY]) if owner is not None else None
        if (
            policy is None
            or table.name != policy.internal_name
            or table.args.get("db")
            or table.args.get("catalog")
            or table.parent is not owner.this.args.get("from_")  # type: ignore[union-attr]
        ):
            raise PolicyViolation(text("the query reads a table outside its policy"))
    return expression
