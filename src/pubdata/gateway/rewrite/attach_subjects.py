"""Carry each served row's data subject to the gateway as a hidden keyed hash (REQ-41).

"Who accessed data about this person" must name the consumer who saw his record with the identity
number masked, not only one who saw it as stored. So where the answer's rows are still records —
each row one record of each entry it reads — the policy subquery also yields the keyed hash of the
raw subject key (`TablePolicy.subjects`, computed by the engine with a key the SQL never holds),
and every level between it and the top passes it on under a fresh reserved name. The gateway indexes
the top's ``__subject_*`` columns and drops them before anything is written out.

A row that is no longer one record — under GROUP BY, an aggregate, DISTINCT, a set operation or a
pivot — is left as written (adding a column would change the answer); the gateway then records that
subjects were aggregated. The hash is added only where the user cannot reach it: users cannot write
``__`` names, and a level is skipped when a star or a whole-row reference other than a plain SELECT
item (``to_json(t)``, ``COLUMNS(*)``, ``struct_pack(t.*)``), NATURAL JOIN, ``ORDER BY ALL``, an
alias column list as long as the relation, or a second reading of the same CTE could take the extra
column in. The levels below the top carry the raw key (under the same reserved names, which users
cannot write and the gateway never serves); the top hashes it, so only the rows of the answer are
hashed. Measured: the engine's HMAC costs ~0.76 s per million rows on 2 cores (one SHA-256 alone
~0.15 s).

Example:
    >>> from sqlglot import exp
    >>> from pubdata.gateway.policy_types import QueryPolicy, TablePolicy
    >>> from pubdata.gateway.rewrite import rewrite
    >>> from dataclasses import replace
    >>> persons = TablePolicy.build("persons", {"name": exp.column("name")})
    >>> persons = replace(persons, subjects=(exp.column("id"),))
    >>> print(rewrite("SELECT name FROM persons AS p", QueryPolicy.of(persons, row_limit=None)).sql)
    ... # doctest: +NORMALIZE_WHITESPACE
    SELECT name, p.__subject_0 AS __subject_1 FROM (SELECT __base_persons.name AS name,
      __base_persons.id AS __subject_0 FROM __base_persons) AS p
    >>> rewrite("SELECT count(*) FROM persons", QueryPolicy.of(persons)).subject_columns
    {}
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from sqlglot import exp

from pubdata.gateway.policy_types import RESERVED_PREFIX, RewriteContext
from pubdata.gateway.rewrite.replace_tables import POLICY, qualified

#: Names of the hidden subject columns; the gateway drops every column starting with it.
SUBJECT_PREFIX = f"{RESERVED_PREFIX}subject_"
#: ``meta`` key on a top-level hidden column: the lower-case entry code whose subject it carries.
SUBJECT_OF = "pubdata_subject_of"

#: Join kinds whose rows carry the joined source's record (SEMI and ANTI joins only test for one).
JOIN_KINDS = frozenset({"", "INNER", "OUTER", "CROSS"})

#: SELECT arguments under which each row is still one record of each source.
ROW_LEVEL_ARGS = frozenset(
    {"expressions", "from_", "joins", "where", "order", "limit", "offset", "qualify", "with_"}
)


def attach_subjects(expression: exp.Expression, context: RewriteContext) -> exp.Expression:
    if isinstance(expression, exp.Select) and any(p.subjects for p in context.policy.tables.values()):
        added = {
            name: (code, template) for name, code, template in _attach(expression, context, itertools.count())
        }
        for item in expression.selects:
            if item.alias in added:
                code, template = added[item.alias]
                if template is not None:  # the raw key came up: hash it here, on the rows kept
                    item.set("this", _hashed(template, item.this))
                item.meta[SUBJECT_OF] = code
    return expression


def _hashed(template: exp.Expression, key: exp.Expression) -> exp.Expression:
    """The subject's hash expression (`TablePolicy.subjects`) over `key` instead of its one column."""
    return template.copy().transform(lambda node: key.copy() if isinstance(node, exp.Column) else node)


#: A hidden column `_attach` adds: its name, the entry whose subject it carries, and the hash to
#: apply at the top (None: the column holds the hash already).
Carried = tuple[str, str, exp.Expression | None]


def _attach(select: exp.Select, context: RewriteContext, counter: Iterator[int]) -> list[Carried]:
    """Add the hidden columns to `select` (and below); the names it now yields, with their entries."""
    if not _row_level(select):
        return []
    carried: list[tuple[exp.Identifier, str, str, exp.Expression | None]] = []
    for holder in _sources(select, carrying=True):
        alias = holder.args.get("alias")
        name = alias.this if isinstance(alias, exp.TableAlias) else holder.this
        if (
            holder.args.get("pivots")
            or not isinstance(name, exp.Identifier)
            or not _keeps_names(holder, alias)
        ):
            continue
        for inner, code, template in _source(holder, context, counter):
            carried.append((name, inner, code, template))
    added: list[Carried] = []
    for table, inner, code, template in carried:
        name = f"{SUBJECT_PREFIX}{next(counter)}"
        select.select(exp.alias_(exp.column(inner, table=table.copy()), name), copy=False)
        added.append((name, code, template))
    return added


def _source(holder: exp.Expression, context: RewriteContext, counter: Iterator[int]) -> list[Carried]:
    if isinstance(holder, exp.Subquery) and POLICY in holder.meta:
        policy = context.policy.lookup(holder.meta[POLICY])
        if policy is None or not isinstance(holder.this, exp.Select):
            return []
        found: list[Carried] = []
        for subject in policy.subjects:
            name = f"{SUBJECT_PREFIX}{next(counter)}"
            # The raw key travels up and is hashed at the top: under ORDER BY … LIMIT the engine then
            # hashes the kept rows only, not every row that enters the sort (measured: top 1 000 of
            # 100 000 rows, 0.16 s → 0.06 s). A hash over several columns is computed here.
            keys = list(subject.find_all(exp.Column))
            key, template = (keys[0], subject) if len(keys) == 1 else (subject, None)
            holder.this.select(exp.alias_(qualified(key, policy.internal_name), name), copy=False)
            found.append((name, policy.entry_code.lower(), template))
        return found
    if isinstance(holder, exp.Subquery) and isinstance(holder.this, exp.Select):
        return _attach(holder.this, context, counter)
    if isinstance(holder, exp.Table) and not holder.db:
        cte = _cte(holder)
        if cte is None or not isinstance(cte.this, exp.Select):
            return []
        # Only a CTE read once: another reading (`IN (SELECT * FROM s)`, a UNION) would see the column.
        name = cte.alias.lower()
        readings = [t for t in holder.root().find_all(exp.Table) if not t.db and t.name.lower() == name]
        if len(readings) == 1 and _keeps_names(cte, cte.args.get("alias")):
            return _attach(cte.this, context, counter)
    return []


def _keeps_names(holder: exp.Expression, alias: object) -> bool:
    """Whether a column appended to the relation keeps its name: an alias column list (``AS t(a, b)``)
    renames the first columns in order, so it must be shorter than what the relation yields without
    the hidden ones."""
    renamed = len(alias.args.get("columns") or []) if isinstance(alias, exp.TableAlias) else 0
    if not renamed:
        return True
    query = holder.this
    if isinstance(holder, exp.Table):
        cte = _cte(holder)
        query = cte.this if cte is not None else None
    if not isinstance(query, exp.Select) or any(
        isinstance(e, exp.Star) or e.is_star for e in query.expressions
    ):
        return False
    return renamed < sum(not e.alias_or_name.startswith(SUBJECT_PREFIX) for e in query.expressions)


def _cte(table: exp.Table) -> exp.CTE | None:
    """The CTE a table reference names, searching outward as SQL scoping does."""
    node: exp.Expr | None = table.parent
    while node is not None:
        with_ = node.args.get("with_") if isinstance(node, exp.Query) else None
        if isinstance(with_, exp.With) and not with_.args.get("recursive"):
            for cte in with_.expressions:
                if cte.alias.lower() == table.name.lower():
                    return cte  # type: ignore[no-any-return]
        node = node.parent
    return None


def _sources(select: exp.Select, carrying: bool = False) -> list[exp.Expression]:
    """The relations of FROM and JOIN; `carrying`: only those whose records make the rows."""
    from_ = select.args.get("from_")
    holders = [from_.this] if isinstance(from_, exp.From) else []
    joins = select.args.get("joins") or []
    return holders + [
        j.this for j in joins if not carrying or str(j.args.get("kind") or "").upper() in JOIN_KINDS
    ]


def _row_level(select: exp.Select) -> bool:
    """Whether each row of `select` is one record of each source, and no user expression can take in
    a column the user did not name."""
    if any(value for arg, value in select.args.items() if arg not in ROW_LEVEL_ARGS):
        return False
    if any(j.args.get("method") for j in select.args.get("joins") or []):
        return False  # NATURAL joins on every same-named column; ASOF and POSITIONAL are kept simple
    order = select.args.get("order")
    if order is not None and any(isinstance(o.this, exp.Var) for o in order.expressions):
        return False  # ORDER BY ALL
    sources = _sources(select)
    aliases = {h.alias_or_name.lower() for h in sources}
    below = {id(h) for h in sources if isinstance(h, exp.Subquery | exp.Table)}
    bare = {id(item) for item in select.expressions}
    own = True
    for node in select.walk(prune=lambda n: id(n) in below):
        if node is select:
            continue
        nested = node.find_ancestor(exp.Select) is not select
        if isinstance(node, exp.AggFunc) and not nested and not node.find_ancestor(exp.Window):
            return False
        if isinstance(node, exp.Columns):
            return False
        if isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
            star_item = node if not isinstance(node.parent, exp.Column) else node.parent
            qualifier = star_item.table.lower() if isinstance(star_item, exp.Column) else ""
            if id(star_item) in bare or (nested and not qualifier):
                continue
            own = False
        if isinstance(node, exp.Column) and not node.table and node.name.lower() in aliases:
            own = False  # a whole-row reference: `to_json(p)`
    return own
