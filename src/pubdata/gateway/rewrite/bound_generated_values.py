"""Refuse queries that would build values larger than a setting from their own arguments.

One DuckDB function call that builds a giant value cannot be interrupted and is allocated outside
the engine's memory limit: ``repeat([1], 300000000)`` took 14 GB and a minute, ``repeat('x',
2000000000)`` 2.8 GB. So the sizes a query asks for are read from the SQL before it runs. A
*constructor* (`repeat`, `lpad`/`rpad`, `printf` with a width) must be given its size as a number
written in the query, and the estimated size of everything the query builds must stay within
``query_max_generated_bytes``:

- a character counts 1, a list element `ITEM` (DuckDB spends ~85 bytes on each of a big list);
- an argument that is not a literal (a column, an expression) is taken as `COLUMN_WIDTH` wide;
- a value built once per row — it reads a column, sits in an aggregate, a window or a lambda, or
  its SELECT reads a table — counts `BATCH_ROWS` times: DuckDB builds a whole batch of them in
  one uninterruptible step;
- `replace` / `regexp_replace` of a built value multiply it by the replacement's size.

What the estimate cannot see (values grown by joining a CTE with itself, concatenating columns) is
left to the engine's time budget and memory watchdog.

Example:
    >>> from pubdata.gateway.policy_types import QueryPolicy, RewriteContext
    >>> from pubdata.gateway.rewrite.parse_single_query import parse_single_query
    >>> context = RewriteContext(QueryPolicy())
    >>> query = parse_single_query("SELECT lpad(code, 6, '0'), length(repeat('x', 1000)) FROM t")
    >>> bound_generated_values(query, context) is query
    True
    >>> bound_generated_values(parse_single_query("SELECT repeat([1], 300000000)"), context)
    Traceback (most recent call last):
    ...
    pubdata.gateway.policy_types.PolicyViolation: the query would build values of about 19200 MB \
(repeat), more than the 64 MB a query may build
    >>> bound_generated_values(parse_single_query("SELECT repeat('x', n) FROM t"), context)
    Traceback (most recent call last):
    ...
    pubdata.gateway.policy_types.PolicyViolation: the size given to repeat must be a number written \
in the query
"""

from __future__ import annotations

import re

from sqlglot import exp

from pubdata.gateway.policy_types import PolicyViolation, RewriteContext
from pubdata.messages import text

#: What one list element counts, in characters.
ITEM = 64
#: Assumed width of a value that is not a literal.
COLUMN_WIDTH = 256
#: Rows DuckDB computes in one step (its vector size): the multiplier of a value built per row.
BATCH_ROWS = 2048
#: Where a value is computed once per row (or per element).
_PER_ROW = (exp.AggFunc, exp.Window, exp.Lambda)
_WIDTHS = re.compile(r"\d+")


def bound_generated_values(expression: exp.Expression, context: RewriteContext) -> exp.Expression:
    limit = context.policy.limits.max_generated_bytes
    total, names = 0, []
    for node in _outermost(expression):
        size = _size(node) * (BATCH_ROWS if _per_row(node) else 1)
        total += size
        names.append(_name(node))
    if total > limit:
        raise PolicyViolation(
            text(
                "the query would build values of about {size} MB ({functions}), more than the {limit} MB"
                " a query may build",
                size=max(total // 1_000_000, 1),
                functions=", ".join(dict.fromkeys(names)),
                limit=limit // 1_000_000,
            )
        )
    return expression


def _is_constructor(node: exp.Expr) -> bool:
    if isinstance(node, exp.Repeat | exp.Pad):
        return True
    if isinstance(node, exp.Anonymous) and node.name.lower() == "printf":
        return True
    if isinstance(node, exp.Replace | exp.RegexpReplace):
        return any(_is_constructor(n) for n in node.this.walk())
    return False


def _outermost(expression: exp.Expression) -> list[exp.Expr]:
    found: list[exp.Expr] = []
    for node in expression.walk():
        if _is_constructor(node):
            parent = node.parent
            while parent is not None and not _is_constructor(parent):
                parent = parent.parent
            if parent is None:
                found.append(node)
    return found


def _size(node: exp.Expr) -> int:
    """Estimated size of the value `node` computes, in characters (list elements count `ITEM`)."""
    if isinstance(node, exp.Literal):
        return len(node.this) if node.is_string else 8
    if isinstance(node, exp.Column | exp.Star):
        return COLUMN_WIDTH
    if isinstance(node, exp.Array):
        return sum(max(ITEM, _size(e)) for e in node.expressions) or ITEM
    if isinstance(node, exp.Repeat):
        return _count(node.args.get("times"), node) * _size(node.this)
    if isinstance(node, exp.Pad):
        return _count(node.expression, node)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "printf":
        return _printf(node)
    if isinstance(node, exp.Replace | exp.RegexpReplace) and _is_constructor(node):
        return _size(node.this) * max(1, _size(node.args["replacement"]))
    children = list(node.iter_expressions())
    return sum(_size(c) for c in children) if children else 8


def _count(argument: exp.Expr | None, node: exp.Expr) -> int:
    """A size argument: a number written in the query (a cast or sign around it allowed)."""
    negative = False
    while isinstance(argument, exp.Cast | exp.Paren | exp.Neg):
        negative ^= isinstance(argument, exp.Neg)
        argument = argument.this
    if isinstance(argument, exp.Literal):
        try:
            value = int(float(argument.this))
        except ValueError:
            value = None
        if value is not None:
            return 0 if negative else max(value, 0)
    raise PolicyViolation(
        text("the size given to {function} must be a number written in the query", function=_name(node))
    )


def _printf(node: exp.Anonymous) -> int:
    """``printf``: the widths in its format (which must be a literal) and any ``*`` width given."""
    pattern, *values = node.expressions
    if not (isinstance(pattern, exp.Literal) and pattern.is_string):
        raise PolicyViolation(
            text("the size given to {function} must be a number written in the query", function="printf")
        )
    widths = sum(int(w) for w in _WIDTHS.findall(pattern.this))
    if "*" in pattern.this:
        widths += sum(_count(v, node) for v in values if not (isinstance(v, exp.Literal) and v.is_string))
    return widths + sum(_size(v) for v in values)


def _per_row(node: exp.Expr) -> bool:
    if node.find(exp.Column) is not None or node.find_ancestor(*_PER_ROW) is not None:
        return True
    select = node.find_ancestor(exp.Select)
    return select is not None and any(isinstance(t, exp.Table) for t in _sources(select))


def _sources(select: exp.Select) -> list[exp.Expr]:
    from_ = select.args.get("from_") or select.args.get("from")
    items = [from_.this] if from_ is not None else []
    return items + [j.this for j in select.args.get("joins") or []]


def _name(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    if isinstance(node, exp.Pad):
        return "lpad" if node.args.get("is_left") else "rpad"
    if isinstance(node, exp.Func):
        return str(node.sql_name()).lower()
    return node.key
