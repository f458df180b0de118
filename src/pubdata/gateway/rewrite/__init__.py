"""Policy rewriting: a user's SQL in, the SQL the engine may run out.

The rewrite is a pipeline of pure rules, each ``(expression, context) -> expression`` in its own
module and named for what it does; `RULES` is the default order and callers may pass their own
tuple. Checks that must see only what the user wrote (statement kind, functions, reserved names,
table names) run before `replace_tables` inserts the policy subqueries, and `keep_user_names` names
unaliased columns after the user's text; `mark_disputed` shows the
mark of disputed records (REQ-12) in row-level answers, `mark_flagged` that of rows kept with
quality flags at ingest; `forbid_cross_grant_links` refuses comparing
pseudonyms keyed under different grants; `limit_rows`, `mask_late`
(masks computed after ORDER BY … LIMIT where no part of the query can tell), `attach_subjects`
(the hidden subject hashes of row-level answers, REQ-41) and the `verify_enforced` safety net run
last. The result's `served` columns carry their lineage (`trace_lineage`). Every refusal is a
`PolicyViolation`.

Example:
    >>> from sqlglot import exp
    >>> from pubdata.gateway.policy_types import QueryPolicy, TablePolicy
    >>> persons = TablePolicy.build(
    ...     "persons",
    ...     {
    ...         "name": exp.func("concat", exp.func("left", exp.column("name"), exp.Literal.number(1)),
    ...                          exp.Literal.string("**")),
    ...         "division_code": exp.column("division_code"),
    ...     },
    ...     row_filter=exp.column("division_code").like(exp.Literal.string("3301%")),
    ...     version=7,
    ... )
    >>> policy = QueryPolicy.of(persons, row_limit=50)
    >>> result = rewrite("SELECT name FROM Persons WHERE name = '张三'", policy)
    >>> print(result.sql)  # doctest: +NORMALIZE_WHITESPACE
    SELECT name FROM (SELECT LEFT(__base_persons.name, 1) || '**' AS name,
      __base_persons.division_code AS division_code FROM __base_persons
      WHERE __base_persons.division_code LIKE '3301%') AS Persons WHERE name = '张三' LIMIT 50
    >>> result.tables, result.columns, result.policy_versions
    (('persons',), {'persons': ('name',)}, {'persons': 7})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from pubdata.gateway.policy_types import PolicyViolation, QueryPolicy, RewriteContext
from pubdata.gateway.rewrite.attach_subjects import SUBJECT_OF, attach_subjects
from pubdata.gateway.rewrite.bound_generated_values import bound_generated_values
from pubdata.gateway.rewrite.check_functions import ENGINES, check_functions, function_name
from pubdata.gateway.rewrite.collect_access import policy_subqueries, user_nodes
from pubdata.gateway.rewrite.forbid_cross_grant_links import forbid_cross_grant_links
from pubdata.gateway.rewrite.forbid_recursion import forbid_recursion
from pubdata.gateway.rewrite.forbid_side_effects import forbid_side_effects
from pubdata.gateway.rewrite.keep_user_names import keep_user_names
from pubdata.gateway.rewrite.limit_joins import limit_joins
from pubdata.gateway.rewrite.limit_rows import limit_rows
from pubdata.gateway.rewrite.mark_disputed import mark_disputed
from pubdata.gateway.rewrite.mark_flagged import mark_flagged
from pubdata.gateway.rewrite.mask_late import mask_late
from pubdata.gateway.rewrite.parse_single_query import parse_single_query
from pubdata.gateway.rewrite.replace_tables import POLICY, replace_tables
from pubdata.gateway.rewrite.reserve_internal_names import reserve_internal_names
from pubdata.gateway.rewrite.resolve_tables import resolve_tables
from pubdata.gateway.rewrite.trace_lineage import ServedColumn, trace_lineage
from pubdata.gateway.rewrite.verify_enforced import verify_enforced

Rule = Callable[[exp.Expression, RewriteContext], exp.Expression]

RULES: tuple[Rule, ...] = (
    forbid_side_effects,
    forbid_recursion,
    check_functions,
    limit_joins,
    bound_generated_values,
    reserve_internal_names,
    keep_user_names,
    resolve_tables,
    replace_tables,
    mark_disputed,
    mark_flagged,
    forbid_cross_grant_links,
    limit_rows,
    mask_late,
    attach_subjects,
    verify_enforced,
)

__all__ = ["RULES", "PolicyViolation", "RewriteResult", "Rule", "rewrite"]


@dataclass(frozen=True)
class RewriteResult:
    """The enforced query, in each engine's dialect, and what it reads."""

    #: The rewritten tree; the SQL strings below are generated from it.
    expression: exp.Expression
    #: The enforced query in DuckDB SQL.
    sql: str
    #: Entry codes read (lower case, sorted).
    tables: tuple[str, ...]
    #: Visible columns read per entry code (over-approximated; see `collect_access`).
    columns: Mapping[str, tuple[str, ...]]
    #: Policy version per entry code read.
    policy_versions: Mapping[str, int]
    #: The answer's columns, each with the entry fields it derives from (`trace_lineage`).
    served: tuple[ServedColumn, ...] = ()
    #: Hidden columns of the answer carrying subject hashes (`attach_subjects`) → their entry code.
    subject_columns: Mapping[str, str] = field(default_factory=dict)

    @property
    def spark_sql(self) -> str | None:
        """The enforced query in Spark SQL, or ``None`` when it cannot run there (see
        `spark_unsupported`)."""
        return self._spark[0]

    @property
    def spark_unsupported(self) -> str | None:
        """Why `spark_sql` is missing: the functions or constructs Spark would get wrong."""
        return self._spark[1]

    @cached_property
    def _spark(self) -> tuple[str | None, str | None]:
        """Generated on first use: it was half the time of a rewrite, and DuckDB requests never
        read it."""
        return _spark(self.expression)

    def pretty(self, dialect: str = "duckdb") -> str:
        return self.expression.sql(dialect=dialect, pretty=True)


def rewrite(
    sql: str, policy: QueryPolicy, dialect: str = "duckdb", *, rules: tuple[Rule, ...] = RULES
) -> RewriteResult:
    """Rewrite `sql` (written in `dialect`) so that it can only see what `policy` grants."""
    context = RewriteContext(policy, dialect)
    expression = parse_single_query(sql, dialect)
    for rule in rules:
        expression = rule(expression, context)
    tables = tuple(sorted({s.meta[POLICY] for s in policy_subqueries(expression)}))
    lineage = trace_lineage(expression)
    hidden = expression.selects if isinstance(expression, exp.Select) else []
    return RewriteResult(
        expression=expression,
        sql=expression.sql(dialect="duckdb"),
        tables=tables,
        columns=lineage.read,
        policy_versions={code: policy.tables[code].version for code in tables},
        served=lineage.served,
        subject_columns={s.alias: s.meta[SUBJECT_OF] for s in hidden if SUBJECT_OF in s.meta},
    )


def _spark(expression: exp.Expression) -> tuple[str | None, str | None]:
    spark = ENGINES["spark"]
    refused = [
        function_name(n) for n in user_nodes(expression) if isinstance(n, exp.Func) and not spark.allows(n)
    ]
    if refused:
        return None, f"functions Spark would not run the same way: {', '.join(dict.fromkeys(refused))}"
    try:
        return expression.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE), None
    except SqlglotError as error:
        return None, str(error).splitlines()[0]
