"""Show the mark of disputed records in a row-level answer that did not ask for it (REQ-12).

While an objection holds records of an entry flagged, its policy subquery yields ``_disputed``
(see `replace_tables`). ``SELECT *`` shows it by itself; a query that lists its columns gets
``<alias>._disputed`` appended when the answer's rows are the entry's rows one by one: one SELECT
over one policy subquery, with nothing at the top but WHERE, ORDER BY, LIMIT and OFFSET, and no
aggregate or window in it. Any other shape (aggregates, joins, set operations, DISTINCT) is left as
written: its rows are not records, and the gateway's ``X-Pubdata-Disputed`` header tells the caller
how many disputed records the rows it may see hold (`gateway.disputed.count_disputed`). Queries
over entries without flagged records are never touched. Users cannot forge the column:
`reserve_internal_names` refuses the name as an output.

Example:
    >>> from sqlglot import exp
    >>> from pubdata.gateway.policy_types import QueryPolicy, TablePolicy
    >>> from pubdata.gateway.rewrite import rewrite
    >>> persons = TablePolicy.build(
    ...     "persons",
    ...     {"name": exp.column("name")},
    ...     disputed=exp.column("id").isin(exp.Literal.string("7")),
    ... )
    >>> print(rewrite("SELECT name FROM persons", QueryPolicy.of(persons, row_limit=None)).sql)
    ... # doctest: +NORMALIZE_WHITESPACE
    SELECT name, persons._disputed FROM (SELECT __base_persons.name AS name,
      COALESCE(__base_persons.id IN ('7'), FALSE) AS _disputed FROM __base_persons) AS persons
"""

from __future__ import annotations

from sqlglot import exp

from pubdata.gateway.policy_types import DISPUTED_COLUMN, RewriteContext
from pubdata.gateway.rewrite.replace_tables import POLICY

#: SELECT arguments under which each answer row is one record of the entry.
ROW_LEVEL_ARGS = frozenset({"expressions", "from_", "where", "order", "limit", "offset"})


def mark_disputed(expression: exp.Expression, context: RewriteContext) -> exp.Expression:
    if not isinstance(expression, exp.Select):
        return expression
    source = row_level_source(expression)
    if source is None:
        return expression
    policy = context.policy.lookup(source.meta[POLICY])
    if policy is None or policy.disputed is None:
        return expression
    if any(_shows_disputed(item) for item in expression.expressions):
        return expression
    mark = exp.column(exp.to_identifier(DISPUTED_COLUMN), table=source.args["alias"].this.copy())
    return expression.select(mark, copy=False)


def row_level_source(expression: exp.Select) -> exp.Subquery | None:
    """The policy subquery whose records the answer's rows are, or None for any other shape."""
    if any(value for arg, value in expression.args.items() if arg not in ROW_LEVEL_ARGS):
        return None
    source = expression.args["from_"].this if expression.args.get("from_") else None
    if not isinstance(source, exp.Subquery) or POLICY not in source.meta or source.args.get("pivots"):
        return None
    for node in expression.walk(
        prune=lambda n: n is not expression and isinstance(n, exp.Query | exp.Subquery)
    ):
        if isinstance(node, exp.AggFunc | exp.Window):
            return None
    return source


def _shows_disputed(item: exp.Expression) -> bool:
    """Whether a SELECT item already shows the mark: ``*``, ``t.*`` or the column itself."""
    return isinstance(item, exp.Star) or (
        isinstance(item, exp.Column)
        and (isinstance(item.this, exp.Star) or item.name.lower() == DISPUTED_COLUMN)
    )
