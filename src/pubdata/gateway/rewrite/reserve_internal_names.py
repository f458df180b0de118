"""Refuse identifiers in the platform's reserved ``__`` namespace.

The engine registers each granted entry's raw rows as ``__base_<code>``, and pseudonym keys live in
``__pk_…`` variables; a user who could name either — as a table, a column, an alias or a CTE —
could read around the policy subquery or shadow it. Matching is case-insensitive, as in DuckDB.

``_disputed`` is the column that marks records under a flagged objection (REQ-12): a query may read
it, but no query may make a column of that name (an alias, a CTE column, an UNPIVOT or PIVOT name),
so a consumer never sees a mark the platform did not set.

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

from pubdata.gateway.policy_types import DISPUTED_COLUMN, RESERVED_PREFIX, PolicyViolation, RewriteContext
from pubdata.messages import text

FORGED_MARK = text(
    "{column} is the platform's mark of disputed records: read it, do not name it", column=DISPUTED_COLUMN
)


def reserve_internal_names(expression: exp.Expression, context: RewriteContext) -> exp.Expression:
    for identifier in expression.find_all(exp.Identifier):
        if identifier.name.lstrip().startswith(RESERVED_PREFIX):
            raise PolicyViolation(
                text(
                    "names starting with {prefix} are reserved: {name}",
                    prefix=RESERVED_PREFIX,
                    name=identifier.name,
                )
            )
        if identifier.name.strip().lower() == DISPUTED_COLUMN and _names_a_column(identifier):
            raise PolicyViolation(FORGED_MARK)
    for pivot in expression.find_all(exp.Pivot):
        for literal in pivot.find_all(exp.Literal):
            if literal.is_string and literal.name.strip().lower() == DISPUTED_COLUMN:
                raise PolicyViolation(FORGED_MARK)
    return expression


def _names_a_column(identifier: exp.Identifier) -> bool:
    """Whether the name makes an output column (an alias, a CTE column, an UNPIVOT name) rather than
    reading one: ``SELECT false AS _disputed`` would forge the mark of disputed records."""
    return not isinstance(identifier.parent, exp.Column) or identifier.find_ancestor(exp.Pivot) is not None
