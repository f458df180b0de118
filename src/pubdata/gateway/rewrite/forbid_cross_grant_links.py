"""Refuse comparing pseudonyms made under different grants: they never match, and silence misleads.

A pseudonym is keyed per grant (`pubdata.gateway.deid_pseudonym`), so the same identity number has
unrelated tokens in two entries read under two grants. ``JOIN … ON a.person_key = b.person_key``
then answers with no rows, and a consumer reads "nobody is in both" where the truth is "these
columns cannot be linked". So a comparison — ``=``, ``<>``, ordering, ``IS [NOT] DISTINCT FROM``,
``IN`` (a list or a subquery), ``JOIN … USING`` and ``NATURAL JOIN``, ``INTERSECT`` and ``EXCEPT`` —
whose two sides derive (by lineage, `trace_lineage`) from pseudonyms of different keys is refused,
naming both fields. Linking records across grants is a later feature; pseudonyms of one grant (an
entry joined to itself) compare as before.

Example:
    >>> from sqlglot import exp, parse_one
    >>> from pubdata.gateway.policy_types import QueryPolicy, TablePolicy
    >>> from pubdata.gateway.rewrite import rewrite
    >>> def keyed(slot):
    ...     return parse_one(f"sha256(getvariable('__pk_{slot}_i') || id)", read="duckdb")
    >>> a = TablePolicy.build("a", {"key": keyed("g1")})
    >>> b = TablePolicy.build("b", {"key": keyed("g2")})
    >>> rewrite("SELECT count(*) FROM a JOIN b ON a.key = b.key", QueryPolicy.of(a, b))
    Traceback (most recent call last):
    ...
    pubdata.gateway.policy_types.PolicyViolation: a.key and b.key are pseudonyms under different \
grants and never match; linking records across grants is not available yet
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sqlglot import exp
from sqlglot.errors import OptimizeError

from pubdata.gateway.policy_types import PolicyViolation, RewriteContext
from pubdata.gateway.rewrite.collect_access import policy_subqueries, user_nodes
from pubdata.gateway.rewrite.replace_tables import POLICY
from pubdata.gateway.rewrite.trace_lineage import Fields, FieldTracer
from pubdata.messages import text

#: Prefix of the variables holding pseudonym keys; the slot (one per grant) follows it.
KEY_VARIABLE = "__pk_"
#: Comparisons whose sides must be comparable values.
COMPARISONS = (
    exp.EQ, exp.NEQ, exp.NullSafeEQ, exp.NullSafeNEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
)  # fmt: skip

Slots = Mapping[tuple[str, str], str]


def forbid_cross_grant_links(expression: exp.Expression, context: RewriteContext) -> exp.Expression:
    read = {s.meta[POLICY] for s in policy_subqueries(expression)}
    slots = {
        (code, name): slot
        for code, policy in context.policy.tables.items()
        if code in read
        for name, column in policy.columns.items()
        if (slot := key_slot(column)) is not None
    }
    if len(set(slots.values())) < 2:
        return expression  # one key or none: every pseudonym read compares with every other
    try:
        tracer = FieldTracer(expression)
    except OptimizeError:  # the engine refuses such a query (one alias used twice) on its own
        return expression
    for left, right in _compared(expression, tracer):
        _check(left, right, slots)
    return expression


def key_slot(column: exp.Expression) -> str | None:
    """The key slot a policy column's pseudonym is keyed by (``__pk_g7_i`` → ``g7``), else None."""
    for call in column.find_all(exp.Anonymous):
        if call.name.lower() == "getvariable" and call.expressions:
            name = call.expressions[0]
            if isinstance(name, exp.Literal) and name.this.lower().startswith(KEY_VARIABLE):
                variable = str(name.this).lower()[len(KEY_VARIABLE) :]
                return variable[:-2] if variable.endswith(("_i", "_o")) else variable
    return None


def _compared(expression: exp.Expression, tracer: FieldTracer) -> Iterator[tuple[Fields, Fields]]:
    """The fields of the two sides of every comparison the user wrote."""
    for node in user_nodes(expression):
        if isinstance(node, COMPARISONS):
            yield tracer.fields(node.this), tracer.fields(node.expression)
        elif isinstance(node, exp.In):
            right = node.args.get("query") or node.args.get("unnest")
            for side in [right] if right is not None else node.expressions:
                yield tracer.fields(node.this), tracer.fields(side)
        elif isinstance(node, exp.Join) and (node.args.get("using") or node.method == "NATURAL"):
            yield from _joined(node, tracer)
        elif isinstance(node, exp.Intersect | exp.Except):
            left, right = node.this, node.expression
            if isinstance(left, exp.Query) and isinstance(right, exp.Query):
                for a, b in zip(left.selects, right.selects, strict=False):
                    yield tracer.fields(a), tracer.fields(b)


def _joined(join: exp.Join, tracer: FieldTracer) -> Iterator[tuple[Fields, Fields]]:
    """``USING (k)`` and NATURAL joins compare same-named columns: the joined source's against those
    of the sources before it in the same FROM clause."""
    select = join.parent
    if not isinstance(select, exp.Select):
        return
    joined = join.this.alias_or_name.lower()
    sources = tracer.sources(select)
    before = [select.args["from_"].this] if select.args.get("from_") else []
    before += [j.this for j in select.args.get("joins") or []][: select.args["joins"].index(join)]
    others = [n for s in before if (n := s.alias_or_name.lower()) in sources]
    # NATURAL: every column of the joined source; the others are compared where they have one too.
    names = [i.name for i in join.args.get("using") or []] or sources.get(joined, [])
    for name in names:
        right = tracer.source_fields(select, joined, name)
        for other in others:
            left = tracer.source_fields(select, other, name)
            if left is not None and right is not None:
                yield left, right


def _check(left: Fields, right: Fields, slots: Slots) -> None:
    for a in sorted(left):
        for b in sorted(right):
            if a in slots and b in slots and slots[a] != slots[b]:
                raise PolicyViolation(
                    text(
                        "{left} and {right} are pseudonyms under different grants and never match; "
                        "linking records across grants is not available yet",
                        left=".".join(a),
                        right=".".join(b),
                    )
                )
