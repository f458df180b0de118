"""What a rewritten query reads: the entries, their visible columns, and the policy versions.

The audit trail records the fields a consumer asked for. Column use is traced by lineage through the
user's part of the query (`trace_lineage`): a column renamed by ``AS t(c)``, inside a subquery or a
CTE, or read into an expression still counts as the field it comes from. Where a reference cannot
be resolved the trace names too much rather than too little; `*`, `t.*` and whole-row references
count every visible column of their sources.

Example:
    >>> from sqlglot import exp
    >>> from pubdata.gateway.policy_types import QueryPolicy, RewriteContext, TablePolicy
    >>> from pubdata.gateway.rewrite import rewrite
    >>> persons = TablePolicy.build("persons", {"name": exp.column("name"), "age": exp.column("age")})
    >>> columns_used(rewrite("SELECT name FROM persons", QueryPolicy.of(persons)).expression)
    {'persons': ('name',)}
    >>> columns_used(rewrite("SELECT n FROM persons AS p(n)", QueryPolicy.of(persons)).expression)
    {'persons': ('name',)}
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from pubdata.gateway.rewrite.replace_tables import POLICY
from pubdata.gateway.rewrite.trace_lineage import trace_lineage


def user_nodes(expression: exp.Expression) -> Iterator[exp.Expr]:
    """The nodes the user wrote: everything outside the inserted policy subqueries."""
    return expression.walk(prune=lambda node: POLICY in node.meta)


def policy_subqueries(expression: exp.Expression) -> list[exp.Subquery]:
    return [s for s in expression.find_all(exp.Subquery) if POLICY in s.meta]


def columns_used(expression: exp.Expression) -> dict[str, tuple[str, ...]]:
    """Visible columns read per entry code, each tuple in the policy's column order."""
    return trace_lineage(expression).read
