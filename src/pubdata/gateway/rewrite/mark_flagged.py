"""Mark rows that were kept with quality flags at ingest, in every answer that serves them as rows.

An entry ingested under ``--policy flag`` keeps its bad rows with their reasons in the table's
``__row_flags`` column; a consumer must not take such a row for a clean one. While the served
version holds flagged rows, the gateway gives the entry's `TablePolicy` a `quality_flagged`
predicate (`pubdata.gateway.quality_flags`), and this rule:

- adds ``_quality_flagged`` (true for a flagged row, false otherwise) to the entry's policy
  subquery, so ``SELECT *``, ``t.*`` and the rows route show it, and ``WHERE NOT _quality_flagged``
  keeps clean rows only;
- appends ``<alias>._quality_flagged`` to a row-level answer that lists its columns, the same
  shapes `mark_disputed` marks (one SELECT over one policy subquery, no aggregate, window, join,
  DISTINCT or set operation).

The reasons themselves stay in the quality report, for the provider: they name fields the consumer
may not see. Like ``_disputed``, the name is the platform's: a query may read it but never make a
column of that name, wherever it writes it, so no answer carries a mark the platform did not set.
Entries without flagged rows are rewritten exactly as before.

Example:
    >>> import dataclasses
    >>> from sqlglot import exp
    >>> from pubdata.gateway.policy_types import QueryPolicy, TablePolicy
    >>> from pubdata.gateway.rewrite import rewrite
    >>> members = TablePolicy.build("members", {"name": exp.column("name")})
    >>> flagged = exp.column("__row_flags").is_(exp.null()).not_()
    >>> members = dataclasses.replace(members, quality_flagged=flagged)
    >>> print(rewrite("SELECT name FROM members", QueryPolicy.of(members, row_limit=None)).sql)
    ... # doctest: +NORMALIZE_WHITESPACE
    SELECT name, members._quality_flagged FROM (SELECT __base_members.name AS name,
      COALESCE(NOT __base_members.__row_flags IS NULL, FALSE) AS _quality_flagged
      FROM __base_members) AS members
"""

from __future__ import annotations

from sqlglot import exp

from pubdata.gateway.policy_types import PolicyViolation, RewriteContext
from pubdata.gateway.rewrite.mark_disputed import row_level_source
from pubdata.gateway.rewrite.replace_tables import POLICY, qualified
from pubdata.messages import text

#: The column marking rows kept with quality flags at ingest; users may read it, never name it.
QUALITY_FLAGGED_COLUMN = "_quality_flagged"

FORGED_QUALITY_MARK = text(
    "{column} is the platform's mark of rows flagged at ingest: read it, do not name it",
    column=QUALITY_FLAGGED_COLUMN,
)


def mark_flagged(expression: exp.Expression, context: RewriteContext) -> exp.Expression:
    _refuse_forged(expression)
    marked: set[str] = set()
    for subquery in [s for s in expression.find_all(exp.Subquery) if POLICY in s.meta]:
        policy = context.policy.lookup(subquery.meta[POLICY])
        if policy is None or policy.quality_flagged is None:
            continue
        flag = exp.func("coalesce", qualified(policy.quality_flagged, policy.internal_name), exp.false())
        subquery.this.select(exp.alias_(flag, QUALITY_FLAGGED_COLUMN), copy=False)
        marked.add(subquery.meta[POLICY])
    if not marked or not isinstance(expression, exp.Select):
        return expression
    source = row_level_source(expression)
    if source is None or source.meta[POLICY] not in marked:
        return expression
    if any(_shows_mark(item) for item in expression.expressions):
        return expression
    mark = exp.column(exp.to_identifier(QUALITY_FLAGGED_COLUMN), table=source.args["alias"].this.copy())
    return expression.select(mark, copy=False)


def _refuse_forged(expression: exp.Expression) -> None:
    """No alias, CTE column, UNPIVOT or PIVOT name outside the policy subqueries may be the mark."""

    def inside_policy(node: exp.Expr) -> bool:
        return isinstance(node, exp.Subquery) and POLICY in node.meta

    for node in expression.walk(prune=inside_policy):
        if not isinstance(node, exp.Identifier | exp.Literal):
            continue
        if node.name.strip().lower() != QUALITY_FLAGGED_COLUMN:
            continue
        in_pivot = node.find_ancestor(exp.Pivot) is not None
        makes_column = isinstance(node, exp.Identifier) and not isinstance(node.parent, exp.Column)
        if makes_column or (in_pivot and (isinstance(node, exp.Identifier) or node.is_string)):
            raise PolicyViolation(FORGED_QUALITY_MARK)


def _shows_mark(item: exp.Expression) -> bool:
    """Whether a SELECT item already shows the mark: ``*``, ``t.*`` or the column itself."""
    return isinstance(item, exp.Star) or (
        isinstance(item, exp.Column)
        and (isinstance(item.this, exp.Star) or item.name.lower() == QUALITY_FLAGGED_COLUMN)
    )
