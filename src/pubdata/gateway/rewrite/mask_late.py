"""Compute masks after ORDER BY … LIMIT when the query cannot tell the difference.

In ``SELECT id_number, amount FROM persons WHERE amount > 9000 ORDER BY amount DESC LIMIT 1000``
the policy subquery masks ``id_number`` on every row that passes the WHERE, and the top-N keeps a
thousand of them: most of the engine's time goes into masks it throws away. When the masked columns
are only *listed* — named as a bare column in SELECT and nowhere else — masking the rows that come
out gives the same answer, so the query is turned into::

    SELECT <mask over __late.__out_0> AS id_number, __late.__out_1 AS amount
    FROM (SELECT persons.__raw_0 AS __out_0, amount AS __out_1
          FROM (<policy subquery, also projecting the raw column as __raw_0>) AS persons
          WHERE amount > 9000 ORDER BY amount DESC LIMIT 1000) AS __late

Only a query with ORDER BY and LIMIT gains (without a top-N the engine masks just the rows it
returns), so only such a query is changed. The shape is checked against an allowlist, not a
blocklist: one SELECT over one policy subquery with only WHERE, ORDER BY, LIMIT and OFFSET; every
node outside the subquery of a few plain kinds (no function, star, positional column or subquery,
which could reach the raw column by another route); every column reference names a visible
column; output names are the column names themselves, so DuckDB's alias resolution in WHERE and
ORDER BY sees the same values either way; a masked column appears nowhere but as a bare SELECT
item; ORDER BY has no ordinals. Anything else is left as it was. The raw column exists only under a
reserved name that users cannot write.
"""

from __future__ import annotations

from sqlglot import exp

from pubdata.gateway.policy_types import RESERVED_PREFIX, RewriteContext, TablePolicy
from pubdata.gateway.rewrite.replace_tables import POLICY

#: ``meta`` key on a column reference to a raw column brought out for late masking: its visible name.
LATE_OF = "pubdata_late_of"

#: Node kinds allowed outside the policy subquery; anything else keeps the query as written.
ALLOWED = (
    exp.Select, exp.From, exp.Where, exp.Order, exp.Ordered, exp.Limit, exp.Offset, exp.Column,
    exp.Identifier, exp.Alias, exp.TableAlias, exp.Literal, exp.Null, exp.Boolean, exp.Paren,
    exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is,
    exp.Between, exp.In, exp.Like, exp.ILike, exp.Neg, exp.Add, exp.Sub, exp.Mul, exp.Div,
)  # fmt: skip

#: SELECT arguments allowed at the top (no DISTINCT, GROUP BY, HAVING, QUALIFY, WINDOW, joins …).
TOP_ARGS = frozenset({"expressions", "from_", "where", "order", "limit", "offset"})

LATE = f"{RESERVED_PREFIX}late"


def mask_late(expression: exp.Expression, context: RewriteContext) -> exp.Expression:
    if not isinstance(expression, exp.Select):
        return expression
    plan = _plan(expression, context)
    if plan is None:
        return expression
    subquery, policy, masked_items, names = plan
    internal = exp.to_identifier(policy.internal_name)
    policy_select = subquery.this
    outputs: list[exp.Expr] = []
    for index, (item, name) in enumerate(zip(list(expression.expressions), names, strict=True)):
        column = item.this if isinstance(item, exp.Alias) else item
        out_name = f"{RESERVED_PREFIX}out_{index}"
        if index in masked_items:
            raw_column, mask = masked_items[index]
            raw_name = f"{RESERVED_PREFIX}raw_{index}"
            policy_select.append(
                "expressions", exp.alias_(exp.column(raw_column.this.copy(), table=internal.copy()), raw_name)
            )
            reference = exp.Column(this=exp.to_identifier(raw_name), table=subquery.args["alias"].this.copy())
            reference.meta[LATE_OF] = name
            item.replace(exp.alias_(reference, out_name))
            late = _retarget(mask, raw_column, exp.column(out_name, table=LATE))
            shown = exp.alias_(late, item.alias if isinstance(item, exp.Alias) else name, quoted=True)
            shown.meta[POLICY] = subquery.meta[POLICY]
        else:
            item.replace(exp.alias_(column.copy(), out_name))
            shown = exp.alias_(
                exp.column(out_name, table=LATE),
                item.alias if isinstance(item, exp.Alias) else name,
                quoted=True,
            )
        outputs.append(shown)
    return exp.select(*outputs).from_(expression.subquery(LATE))


def _plan(
    expression: exp.Select, context: RewriteContext
) -> tuple[exp.Subquery, TablePolicy, dict[int, tuple[exp.Column, exp.Expression]], list[str]] | None:
    """The policy subquery, its policy, the masked SELECT items and each item's column name, or None
    to leave the query."""
    if any(v for k, v in expression.args.items() if k not in TOP_ARGS):
        return None
    if not expression.args.get("order") or not expression.args.get("limit"):
        return None  # without a top-N the engine masks only the rows it returns anyway
    source = expression.args["from_"].this if expression.args.get("from_") else None
    if not isinstance(source, exp.Subquery) or POLICY not in source.meta or source.args.get("pivots"):
        return None
    policy = context.policy.lookup(source.meta[POLICY])
    if policy is None:
        return None
    alias = source.alias_or_name.lower()
    items: list[exp.Expression] = list(expression.expressions)
    bare = {id(i.this if isinstance(i, exp.Alias) else i) for i in items}
    masked: dict[int, tuple[exp.Column, exp.Expression]] = {}
    seen: set[str] = set()
    masked_names: set[str] = set()
    names: list[str] = []
    for index, item in enumerate(items):
        column = item.this if isinstance(item, exp.Alias) else item
        if not isinstance(column, exp.Column) or not isinstance(column.this, exp.Identifier):
            return None
        name = _visible_name(policy, column.name)
        output = (item.alias if isinstance(item, exp.Alias) else column.name).lower()
        if name is None or output != name.lower() or output in seen:
            return None
        seen.add(output)
        names.append(name)
        policy_column = policy.columns[name]
        if isinstance(policy_column, exp.Column) and policy_column.name == name:
            continue
        raw = _raw_column(policy_column)
        if raw is None:
            return None
        masked[index] = (raw, policy_column)
        masked_names.add(name)
    if not masked:
        return None
    for node in expression.walk(prune=lambda n: n is source):
        if node is source:
            continue
        if not isinstance(node, ALLOWED):
            return None
        if isinstance(node, exp.Select) and node is not expression:
            return None
        if isinstance(node, exp.Ordered) and isinstance(node.this, exp.Literal):
            return None
        if isinstance(node, exp.Column):
            if (
                (node.table and node.table.lower() != alias)
                or node.args.get("db")
                or node.args.get("catalog")
            ):
                return None
            name = _visible_name(policy, node.name)
            if name is None or (name in masked_names and id(node) not in bare):
                return None
    return source, policy, masked, names


def _visible_name(policy: TablePolicy, name: str) -> str | None:
    found = [c for c in policy.columns if c.lower() == name.lower()]
    return found[0] if len(found) == 1 else None


def _raw_column(mask: exp.Expression) -> exp.Column | None:
    """The one raw column a policy expression reads, else None."""
    columns = list(mask.find_all(exp.Column))
    if len({c.name for c in columns}) != 1 or any(
        c.table or not isinstance(c.this, exp.Identifier) for c in columns
    ):
        return None
    if mask.find(exp.Subquery, exp.Select, exp.Star):
        return None
    return columns[0]


def _retarget(mask: exp.Expression, raw_column: exp.Column, target: exp.Column) -> exp.Expression:
    if isinstance(mask, exp.Column):
        return target.copy()
    copy = mask.copy()
    for column in list(copy.find_all(exp.Column)):
        if column.name == raw_column.name:
            column.replace(target.copy())
    return copy
