"""Which entry fields each served column derives from, traced through the query's scopes (REQ-40/41).

Output names say nothing about content: ``FROM persons AS t(c)`` serves ``id_number`` as ``c``,
``concat(id_number, '')`` has no field's name at all, and a subquery may rename anything. So the
audit trail and the masked header follow lineage, not names: every column reference is resolved,
with sqlglot's scopes, to the source it reads — a policy subquery (an entry's visible fields), a
derived table or CTE (its own outputs, renamed by any alias column list), or an outer query — and
every served column carries the set of ``(entry, field)`` it was computed from.

Where a reference cannot be resolved (a struct field, a lambda parameter, a pivoted source), the
trace names too much rather than too little: the field of that name in every entry read, or every
field of a source it cannot see into.

Example:
    >>> from sqlglot import exp
    >>> from pubdata.gateway.policy_types import QueryPolicy, TablePolicy
    >>> from pubdata.gateway.rewrite import rewrite
    >>> columns = {"id_number": exp.column("id_number"), "age": exp.column("age")}
    >>> persons = TablePolicy.build("persons", columns)
    >>> sql = "SELECT y FROM (SELECT c AS y FROM persons AS t(c)) AS s WHERE age > 1"
    >>> lineage = trace_lineage(rewrite(sql, QueryPolicy.of(persons)).expression)
    >>> [(c.name, sorted(c.fields)) for c in lineage.served]
    [('y', [('persons', 'id_number')])]
    >>> lineage.read
    {'persons': ('id_number', 'age')}
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.scope import Scope, build_scope

from pubdata.gateway.policy_types import RESERVED_PREFIX
from pubdata.gateway.rewrite.mask_late import LATE_OF
from pubdata.gateway.rewrite.replace_tables import POLICY

#: ``(entry code, field)`` pairs a value was computed from.
Fields = frozenset[tuple[str, str]]
NONE: Fields = frozenset()


@dataclass(frozen=True)
class ServedColumn:
    """One column of the answer and the entry fields its values derive from."""

    name: str
    fields: Fields


@dataclass(frozen=True)
class _Output:
    name: str
    fields: Fields
    #: A platform column (reserved name): reachable by name only, never by ``*``.
    hidden: bool = False


@dataclass(frozen=True)
class Lineage:
    #: The answer's columns in order (platform columns left out).
    served: tuple[ServedColumn, ...]
    #: Fields read anywhere in the query per entry code, in the policy's column order.
    read: dict[str, tuple[str, ...]]


def trace_lineage(expression: exp.Expression) -> Lineage:
    try:
        return _trace(expression)
    except OptimizeError:  # e.g. one alias used twice, which the engine refuses: name every field
        subqueries = [s for s in expression.find_all(exp.Subquery) if POLICY in s.meta]
        read = {
            s.meta[POLICY]: tuple(
                n for p in s.this.expressions if not (n := p.alias_or_name).startswith(RESERVED_PREFIX)
            )
            for s in subqueries
        }
        return Lineage((), dict(sorted(read.items())))


class FieldTracer:
    """The entry fields the value of any node of a query derives from (its operands, a subquery's
    outputs), and those of a FROM source's column; built once per query."""

    def __init__(self, expression: exp.Expression) -> None:
        root = build_scope(expression) if isinstance(expression, exp.Query) else None
        self._tracer = _Tracer(root) if root is not None else None

    def fields(self, node: exp.Expr) -> Fields:
        scope = self._tracer.scope_around(node) if self._tracer is not None else None
        if self._tracer is None or scope is None or not isinstance(node, exp.Expression):
            return NONE
        return self._tracer.fields_of(node, scope)

    def source_fields(self, select: exp.Select, source: str, name: str) -> Fields | None:
        """Column `name` of the FROM source `source` of `select`; None if it has no such column."""
        scope = self._tracer.scopes.get(id(select)) if self._tracer is not None else None
        if self._tracer is None or scope is None:
            return None
        return _named(self._tracer.source(scope, source.lower()) or [], name.lower())

    def sources(self, select: exp.Select) -> dict[str, list[str]]:
        """The FROM sources of `select` (lower-case names) and the columns each yields."""
        scope = self._tracer.scopes.get(id(select)) if self._tracer is not None else None
        if self._tracer is None or scope is None:
            return {}
        return {
            name: [o.name for o in self._tracer.source(scope, name) or [] if not o.hidden]
            for name in self._tracer._sources(scope)
        }


def _trace(expression: exp.Expression) -> Lineage:
    root = build_scope(expression) if isinstance(expression, exp.Query) else None
    if root is None:
        return Lineage((), {})
    tracer = _Tracer(root)
    served = tuple(ServedColumn(o.name, o.fields) for o in tracer.outputs(root) if not o.hidden)
    read: set[tuple[str, str]] = set(tracer.opaque)
    for column in served:
        read |= column.fields
    for node in expression.walk(prune=lambda n: POLICY in n.meta):
        scope = tracer.scope_around(node)
        if scope is None:
            continue
        if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
            read |= tracer.resolve(node, scope)
        elif isinstance(node, exp.Star | exp.Columns) or (
            isinstance(node, exp.Column) and isinstance(node.this, exp.Star)
        ):
            if not isinstance(node.parent, exp.Count | exp.Column):
                read |= tracer.star(node, scope)
        elif isinstance(node, exp.Join):
            for identifier in node.args.get("using") or []:
                read |= tracer.resolve(exp.column(identifier.name), scope)
    order = tracer.visible
    return Lineage(
        served,
        {code: tuple(n for n in order[code] if (code, n) in read) for code in sorted(order)},
    )


class _Tracer:
    def __init__(self, root: Scope) -> None:
        self.scopes = {id(s.expression): s for s in root.traverse()}
        self.visible: dict[str, list[str]] = {}
        self.opaque: set[tuple[str, str]] = set()
        self._memo: dict[int, list[_Output]] = {}
        self._source_memo: dict[tuple[int, str], list[_Output] | None] = {}
        self._resolving: set[int] = set()
        for scope in self.scopes.values():
            subquery = scope.expression.parent
            if isinstance(subquery, exp.Subquery) and POLICY in subquery.meta:
                self.visible[subquery.meta[POLICY]] = [o.name for o in self._policy(subquery) if not o.hidden]

    def scope_around(self, node: exp.Expr) -> Scope | None:
        parent = node.parent
        while parent is not None and id(parent) not in self.scopes:
            parent = parent.parent
        return self.scopes.get(id(parent)) if parent is not None else None

    # --- what a scope or a source yields

    def outputs(self, scope: Scope) -> list[_Output]:
        key = id(scope.expression)
        if key not in self._memo:
            self._memo[key] = []  # a self-reference (recursive CTE) sees nothing rather than loops
            self._memo[key] = self._outputs(scope)
        return self._memo[key]

    def _outputs(self, scope: Scope) -> list[_Output]:
        query = scope.expression
        if isinstance(query, exp.SetOperation):
            branches = [self.outputs(s) for s in scope.set_operation_scopes]
            first = branches[0] if branches else []
            return [
                _Output(o.name, frozenset().union(*(b[i].fields for b in branches if i < len(b))), o.hidden)
                for i, o in enumerate(first)
            ]
        if not isinstance(query, exp.Select):
            return []
        result: list[_Output] = []
        for item in query.expressions:
            if isinstance(item, exp.Star) or (
                isinstance(item, exp.Column) and isinstance(item.this, exp.Star)
            ):
                result += self._expand(item, scope)
            else:
                name = item.alias_or_name
                result.append(_Output(name, self.fields_of(item, scope), name.startswith(RESERVED_PREFIX)))
        return result

    def _expand(self, star: exp.Expression, scope: Scope) -> list[_Output]:
        """``*`` or ``t.*`` as the columns it stands for (EXCLUDE and REPLACE applied)."""
        if isinstance(star, exp.Column):
            sources = [star.table.lower()]
            star = star.this
        else:
            sources = list(self._sources(scope))
        excluded = {c.name.lower() for c in star.args.get("except_") or []}
        replaced = {r.alias.lower(): r for r in star.args.get("replace") or []}
        result = []
        for name in sources:
            for output in self.source(scope, name) or []:
                if output.hidden or output.name.lower() in excluded:
                    continue
                replacement = replaced.get(output.name.lower())
                if replacement is not None:
                    output = _Output(output.name, self.fields_of(replacement, scope))
                result.append(output)
        return result

    def _sources(self, scope: Scope) -> dict[str, tuple[exp.Expr, object]]:
        return {name.lower(): pair for name, pair in scope.selected_sources.items()}

    def source(self, scope: Scope, name: str) -> list[_Output] | None:
        """The columns source `name` of `scope` yields, renamed by its alias column list; None if
        `scope` has no such source."""
        key = (id(scope.expression), name)
        if key not in self._source_memo:
            self._source_memo[key] = self._source(scope, name)
        return self._source_memo[key]

    def _source(self, scope: Scope, name: str) -> list[_Output] | None:
        pair = self._sources(scope).get(name)
        if pair is None:
            return None
        node, source = pair
        holder = (
            node.parent if isinstance(node, exp.Query) and isinstance(node.parent, exp.Subquery) else node
        )
        if holder.args.get("pivots"):
            fields = self._all_fields(source)
            self.opaque |= fields
            return [_Output("", fields)]
        if isinstance(holder, exp.Subquery) and POLICY in holder.meta:
            outputs = self._policy(holder)
        elif isinstance(source, Scope):
            outputs = self.outputs(source)
            cte = source.expression.parent
            if isinstance(cte, exp.CTE):
                outputs = _renamed(outputs, cte.args.get("alias"))
        else:
            outputs = []
        return _renamed(outputs, holder.args.get("alias"))

    def _policy(self, subquery: exp.Subquery) -> list[_Output]:
        code: str = subquery.meta[POLICY]
        select = subquery.this
        result = []
        for projection in select.expressions:
            name = projection.alias_or_name
            if not name.startswith(RESERVED_PREFIX):
                result.append(_Output(name, frozenset({(code, name)})))
                continue
            # Platform columns serve no field by themselves; a raw column brought out for late
            # masking is traced from its reference, which names the field (`LATE_OF`).
            result.append(_Output(name, NONE, hidden=True))
        return result

    def _all_fields(self, source: object) -> Fields:
        if isinstance(source, Scope):
            found: set[tuple[str, str]] = set()
            for scope in source.traverse():
                subquery = scope.expression.parent
                if isinstance(subquery, exp.Subquery) and POLICY in subquery.meta:
                    found |= {f for o in self._policy(subquery) for f in o.fields}
            return frozenset(found)
        return NONE

    # --- what an expression or a reference reads

    def fields_of(self, expression: exp.Expression, scope: Scope) -> Fields:
        found: set[tuple[str, str]] = set()
        for node in expression.walk(prune=lambda n: id(n) in self.scopes):
            if id(node) in self.scopes:
                found |= {f for o in self.outputs(self.scopes[id(node)]) for f in o.fields}
            elif isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
                found |= self.resolve(node, self.scope_around(node) or scope)
            elif isinstance(node, exp.Star | exp.Columns | exp.Column) and not isinstance(
                node.parent, exp.Count | exp.Column
            ):
                found |= self.star(node, self.scope_around(node) or scope)
        return frozenset(found)

    def star(self, node: exp.Expression, scope: Scope) -> Fields:
        if isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
            outputs = self.source(scope, node.table.lower()) or []
        else:
            outputs = [o for name in self._sources(scope) for o in self.source(scope, name) or []]
        return frozenset(f for o in outputs for f in o.fields)

    def resolve(self, column: exp.Column, scope: Scope) -> Fields:
        name, table = column.name.lower(), column.table.lower()
        chain = _chain(scope)
        if LATE_OF in column.meta:
            pair = self._sources(scope).get(table)
            holder = pair[0].parent if pair is not None else None
            if isinstance(holder, exp.Subquery) and POLICY in holder.meta:
                return frozenset({(holder.meta[POLICY], column.meta[LATE_OF])})
        if table:
            for outer in chain:
                outputs = self.source(outer, table)
                if outputs is not None:
                    hit = _named(outputs, name)
                    # `t.struct_field.x` or an unknown name: everything the source yields.
                    return hit if hit is not None else frozenset(f for o in outputs for f in o.fields)
            # `a.b` where `a` is a column holding a struct.
            return self.resolve(exp.column(column.table), scope)
        for outer in chain:
            found = [
                h
                for n in self._sources(outer)
                if (h := _named(self.source(outer, n) or [], name)) is not None
            ]
            if found:
                return frozenset().union(*found)
            whole = self.source(outer, name)
            if whole is not None:  # a whole-row reference: `to_json(t)`
                return frozenset(f for o in whole for f in o.fields)
            aliases = [p for p in _projections(outer) if p.alias.lower() == name]
            if aliases and id(column) not in self._resolving:
                self._resolving.add(id(column))  # `SELECT a AS b, b AS a` must not loop
                try:
                    return frozenset().union(*(self.fields_of(a.this, outer) for a in aliases))
                finally:
                    self._resolving.discard(id(column))
        return frozenset(
            (code, n) for code, names in self.visible.items() for n in names if n.lower() == name
        )


def _chain(scope: Scope) -> Iterable[Scope]:
    current: Scope | None = scope
    while current is not None:
        yield current
        current = current.parent


def _projections(scope: Scope) -> list[exp.Alias]:
    query = scope.expression
    return [p for p in query.expressions if isinstance(p, exp.Alias)] if isinstance(query, exp.Select) else []


def _named(outputs: list[_Output], name: str) -> Fields | None:
    hits = [o.fields for o in outputs if o.name.lower() == name]
    return frozenset().union(*hits) if hits else None


def _renamed(outputs: list[_Output], alias: exp.Expression | None) -> list[_Output]:
    """``AS t(a, b)`` renames the first columns in order: the column list travels with the lineage."""
    names = [c.name for c in alias.args.get("columns") or []] if isinstance(alias, exp.TableAlias) else []
    if not names:
        return outputs
    return [_Output(names[i], o.fields, o.hidden) if i < len(names) else o for i, o in enumerate(outputs)]
