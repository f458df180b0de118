"""What a rewritten query reads: the entries, their visible columns, and the policy versions.

The audit trail records the fields a consumer asked for. Column use is worked out from the user's
part of the query (policy subqueries are skipped) and errs on the side of naming too much: a bare
column counts for every entry that has a column of that name, and `*`, `t.*` and whole-row
references count every visible column.

Example:
    >>> from sqlglot import exp
    >>> from pubdata.gateway.policy_types import QueryPolicy, RewriteContext, TablePolicy
    >>> from pubdata.gateway.rewrite import rewrite
    >>> persons = TablePolicy.build("persons", {"name": exp.column("name"), "age": exp.column("age")})
    >>> columns_used(rewrite("SELECT name FROM persons", QueryPolicy.of(persons)).expression)
    {'persons': ('name',)}
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from pubdata.gateway.policy_types import RESERVED_PREFIX
from pubdata.gateway.rewrite.mask_late import LATE_OF
from pubdata.gateway.rewrite.replace_tables import POLICY


def user_nodes(expression: exp.Expression) -> Iterator[exp.Expr]:
    """The nodes the user wrote: everything outside the inserted policy subqueries."""
    return expression.walk(prune=lambda node: POLICY in node.meta)


def policy_subqueries(expression: exp.Expression) -> list[exp.Subquery]:
    return [s for s in expression.find_all(exp.Subquery) if POLICY in s.meta]


def columns_used(expression: exp.Expression) -> dict[str, tuple[str, ...]]:
    """Visible columns read per entry code, each tuple in the policy's column order."""
    subqueries = policy_subqueries(expression)
    visible = {
        s.meta[POLICY]: [
            c.alias_or_name for c in s.this.expressions if not c.alias_or_name.startswith(RESERVED_PREFIX)
        ]
        for s in subqueries
    }
    aliases: dict[str, set[str]] = {code: set() for code in visible}
    for s in subqueries:
        aliases[s.meta[POLICY]].add(s.alias_or_name.lower())
    used: dict[str, set[str]] = {code: set() for code in visible}

    def note(qualifier: str, name: str) -> None:
        for code, names in visible.items():
            if qualifier and qualifier not in aliases[code]:
                continue
            if name == "*" or (not qualifier and name in aliases[code]):
                used[code].update(n.lower() for n in names)
            elif name in (n.lower() for n in names):
                used[code].add(name)

    for node in user_nodes(expression):
        if isinstance(node, exp.Column):
            name = "*" if isinstance(node.this, exp.Star) else node.meta.get(LATE_OF, node.name).lower()
            note(node.table.lower(), name)
        elif isinstance(node, exp.Star) and not isinstance(node.parent, (exp.Column, exp.Count)):
            note("", "*")
        elif isinstance(node, exp.Join):
            for identifier in node.args.get("using") or []:
                note("", identifier.name.lower())
    return {code: tuple(n for n in visible[code] if n.lower() in used[code]) for code in sorted(visible)}
