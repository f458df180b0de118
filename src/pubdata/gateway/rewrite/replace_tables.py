"""Replace every resolved entry reference by its policy subquery.

``FROM persons AS p`` becomes ``FROM (SELECT <mask> AS id_number, … FROM __base_persons WHERE
<filter>) AS p``: outside the subquery the raw columns do not exist, so `*`, `p.*`, the whole row
`p`, WHERE, JOIN, GROUP BY, ORDER BY, windows and aggregates all see the masked, filtered rows and
no predicate can reach a raw value. Raw column references in the policy are qualified with the
internal name, so a policy naming a missing column fails instead of binding to an outer query.

Targets are collected before any node is replaced (mutating while walking skips nodes). Replacing a
`Table` would silently drop its modifiers, so each is handled: TABLESAMPLE and PIVOT move onto
the subquery, and the rest — time travel (`AT`, `FOR VERSION/TIMESTAMP AS OF`), hints, partitions,
`ONLY` — is refused, because the engine serves exactly the granted version. The sample is drawn
from the rows the policy lets through: drawn from the raw relation before the filter,
``RESERVOIR(100 ROWS)`` returned a third of that for a grant of one city in a province, and
repeated samples estimated the size of rows the user may not see.

While an objection holds records of the entry flagged (REQ-12), the subquery also yields
``_disputed``, true for exactly those records: the predicate reads the raw key fields inside the
subquery, so the mark needs no key outside it. Without flagged records nothing is added.

Example:
    >>> from sqlglot import exp
    >>> from pubdata.gateway.policy_types import QueryPolicy, RewriteContext, TablePolicy
    >>> from pubdata.gateway.rewrite.parse_single_query import parse_single_query
    >>> from pubdata.gateway.rewrite.resolve_tables import resolve_tables
    >>> persons = TablePolicy.build(
    ...     "persons",
    ...     {"surname": exp.func("left", exp.column("name"), exp.Literal.number(1))},
    ...     row_filter=exp.column("division_code").like(exp.Literal.string("3301%")),
    ... )
    >>> context = RewriteContext(QueryPolicy.of(persons))
    >>> query = resolve_tables(parse_single_query("SELECT * FROM persons AS p"), context)
    >>> print(replace_tables(query, context).sql("duckdb", pretty=True))
    SELECT
      *
    FROM (
      SELECT
        LEFT(__base_persons.name, 1) AS surname
      FROM __base_persons
      WHERE
        __base_persons.division_code LIKE '3301%'
    ) AS p
"""

from __future__ import annotations

from sqlglot import exp

from pubdata.gateway.policy_types import DISPUTED_COLUMN, PolicyViolation, RewriteContext, TablePolicy
from pubdata.gateway.rewrite.resolve_tables import DEFAULT_SCHEMAS, ENTRY
from pubdata.messages import text

#: ``meta`` key on an inserted policy subquery: the lower-case entry code it serves.
POLICY = "pubdata_policy"

#: Table arguments a reference may carry; the name parts and alias are rebuilt, sample and pivots kept.
KEPT_ARGS = frozenset({"this", "db", "catalog", "alias", "sample", "pivots"})

#: Words the refusal uses for the table modifiers that cannot be honoured.
MODIFIER_WORDS = {
    "version": "time travel (FOR VERSION/TIMESTAMP AS OF)",
    "when": "time travel (AT/BEFORE)",
    "system_time": "time travel (FOR SYSTEM_TIME)",
    "changes": "change tracking (CHANGES)",
    "hints": "table hints",
    "indexed": "index hints",
    "partition": "partition selection",
    "only": "ONLY",
}


def replace_tables(expression: exp.Expression, context: RewriteContext) -> exp.Expression:
    targets = [t for t in expression.find_all(exp.Table) if ENTRY in t.meta]
    for table in targets:
        policy = context.policy.lookup(table.meta[ENTRY])
        if policy is None:  # resolve_tables only marks granted entries
            raise PolicyViolation(text("unknown table or no grant for it: {table}", table=table.name))
        _unqualify_columns(expression, table)
        table.replace(policy_subquery(policy, table))
    return expression


def policy_subquery(policy: TablePolicy, table: exp.Table) -> exp.Subquery:
    """The subquery standing in for `table`: visible columns only, filtered rows only."""
    for arg, value in table.args.items():
        if value and arg not in KEPT_ARGS:
            raise PolicyViolation(
                text("not allowed on {table}: {what}", table=table.name, what=MODIFIER_WORDS.get(arg, arg))
            )
    raw = exp.Table(this=exp.to_identifier(policy.internal_name))
    select = exp.select(
        *(exp.alias_(qualified(e, policy.internal_name), name) for name, e in policy.columns.items())
    ).from_(raw)
    if policy.disputed is not None:
        flag = exp.func("coalesce", qualified(policy.disputed, policy.internal_name), exp.false())
        select = select.select(exp.alias_(flag, DISPUTED_COLUMN), copy=False)
    if policy.row_filter is not None:
        select = select.where(qualified(policy.row_filter, policy.internal_name))
    alias = table.args.get("alias")
    subquery = exp.Subquery(
        this=select,
        alias=alias.copy() if alias else exp.TableAlias(this=table.this.copy()),
    )
    if table.args.get("sample"):
        subquery.set("sample", table.args["sample"].copy())
    if table.args.get("pivots"):
        subquery.set("pivots", [p.copy() for p in table.args["pivots"]])
    subquery.meta[POLICY] = policy.entry_code.lower()
    return subquery


def qualified(expression: exp.Expression, internal_name: str) -> exp.Expression:
    """A copy of a policy expression whose bare column references name the raw relation."""
    copy = expression.copy()
    for column in list(copy.find_all(exp.Column)):
        if not column.table and not isinstance(column.this, exp.Star):
            column.set("table", exp.to_identifier(internal_name))
    return copy


def _unqualify_columns(expression: exp.Expression, table: exp.Table) -> None:
    """`main.persons.name` → `persons.name`: the default schema is gone once the table is a subquery."""
    if not table.args.get("db") or table.args.get("alias"):
        return
    for column in expression.find_all(exp.Column):
        if (
            column.args.get("db")
            and column.args["db"].name.lower() in DEFAULT_SCHEMAS
            and column.table.lower() == table.name.lower()
        ):
            column.set("db", None)
            column.set("catalog", None)
