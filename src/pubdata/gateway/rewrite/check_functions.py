"""Allow only functions that compute over their arguments; refuse every other function by name.

DuckDB has many string-taking escape hatches — `query_table('t')`, `query('…')`, `read_csv(path)`,
`glob`, `getvariable`, `current_setting`, `duckdb_tables()` — and new ones arrive with each release,
so the rule is an allowlist, declared per engine as data. Table functions (anything called in
FROM except UNNEST) are refused outright: they are the way into files, other relations and the
engine's own catalogue. The check runs on the user's query *before* the policy subqueries are
inserted, so the de-identification builders may use `getvariable('__pk_…')` while users may not.

A function that DuckDB runs correctly but that transpiles silently wrong to Spark (regex
backreferences, ordered `list()`, `epoch_ms`) is in the DuckDB list and not in the Spark one;
`unsupported_functions` tells the caller which engine a query cannot be sent to.

Example:
    >>> from pubdata.gateway.policy_types import QueryPolicy, RewriteContext
    >>> from pubdata.gateway.rewrite.parse_single_query import parse_single_query
    >>> context = RewriteContext(QueryPolicy())
    >>> query = parse_single_query("SELECT upper(name), count(*) FROM persons GROUP BY 1")
    >>> check_functions(query, context) is query
    True
    >>> check_functions(parse_single_query("SELECT query_table('__base_persons')"), context)
    Traceback (most recent call last):
    ...
    pubdata.gateway.policy_types.PolicyViolation: function not allowed: query_table
    >>> unsupported_functions(parse_single_query("SELECT regexp_replace(a, 'x', 'y')"), "spark")
    ['REGEXP_REPLACE']
"""

from __future__ import annotations

from typing import ClassVar

from sqlglot import exp

from pubdata.gateway.policy_types import PolicyViolation, RewriteContext
from pubdata.messages import text

_COMPUTE: frozenset[type[exp.Func]] = frozenset(
    {
        # operators sqlglot models as functions
        exp.And, exp.Or, exp.Xor, exp.ArrayOverlaps, exp.ArrayContainsAll, exp.ArrayContainedBy,
        exp.ArrayPosition, exp.RegexpILike,
        # arithmetic
        exp.Abs, exp.Round, exp.Ceil, exp.Floor, exp.Sqrt, exp.Pow, exp.Ln, exp.Log, exp.Exp,
        exp.Sign, exp.Greatest, exp.Least, exp.Trunc, exp.Pi, exp.Rand,
        # strings
        exp.Lower, exp.Upper, exp.Length, exp.Substring, exp.Concat, exp.ConcatWs, exp.Trim,
        exp.Left, exp.Right, exp.Replace, exp.StrPosition, exp.Pad, exp.Reverse, exp.Repeat,
        exp.SplitPart, exp.Split, exp.StartsWith, exp.EndsWith, exp.Contains, exp.Initcap,
        exp.Ascii, exp.Chr, exp.Translate, exp.RegexpLike, exp.RegexpExtract, exp.Collate,
        exp.MD5, exp.SHA, exp.SHA2,
        # aggregates
        exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.CountIf, exp.Stddev, exp.StddevSamp,
        exp.StddevPop, exp.Variance, exp.VariancePop, exp.Median, exp.PercentileCont,
        exp.PercentileDisc, exp.ApproxDistinct, exp.GroupConcat, exp.AnyValue, exp.ArgMin,
        exp.ArgMax, exp.LogicalAnd, exp.LogicalOr, exp.Corr, exp.CovarPop, exp.CovarSamp,
        # window functions
        exp.RowNumber, exp.Rank, exp.DenseRank, exp.PercentRank, exp.CumeDist, exp.Ntile,
        exp.Lag, exp.Lead, exp.FirstValue, exp.LastValue, exp.NthValue,
        # conditionals, casts, subquery predicates
        exp.Coalesce, exp.Nullif, exp.If, exp.Case, exp.Cast, exp.TryCast, exp.Exists,
        # dates and times
        exp.CurrentDate, exp.CurrentTimestamp, exp.TimestampTrunc, exp.DateTrunc, exp.Extract,
        exp.Year, exp.Month, exp.Day, exp.Hour, exp.Minute, exp.Second, exp.Quarter, exp.Week,
        exp.DayOfWeek, exp.DayOfYear, exp.DateDiff, exp.DateAdd, exp.DateSub, exp.TimeToStr,
        exp.StrToTime, exp.StrToDate, exp.DateFromParts, exp.LastDay,
        # nested values
        exp.Array, exp.Struct, exp.ArrayContains, exp.ArraySize, exp.ArrayDistinct, exp.Explode,
        exp.Unnest, exp.StructExtract, exp.JSONExtract, exp.JSONExtractScalar, exp.ParseJSON,
        exp.Typeof,
    }
)  # fmt: skip


class EngineFunctions:
    """The functions users may call on one engine."""

    #: sqlglot function nodes (exact classes) that only compute over their arguments.
    typed: ClassVar[frozenset[type[exp.Func]]] = frozenset()
    #: Lower-case names of functions sqlglot keeps as `Anonymous` that are equally harmless.
    anonymous: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def allows(cls, function: exp.Func) -> bool:
        if isinstance(function, exp.Anonymous):
            return function.name.lower() in cls.anonymous
        return type(function) in cls.typed


class DuckDBFunctions(EngineFunctions):
    typed = _COMPUTE | {
        exp.RegexpReplace,
        exp.ArrayAgg,
        exp.UnixToTime,
        exp.TimeToUnix,
        exp.Transform,
        exp.ArrayFilter,
    }
    anonymous = frozenset(
        {"hash", "to_json", "row", "printf", "now", "date_part", "age", "list_extract", "cardinality"}
    )


class SparkFunctions(EngineFunctions):
    """Only functions whose DuckDB → Spark transpilation keeps their meaning."""

    typed = _COMPUTE
    anonymous = frozenset({"now", "date_part", "cardinality"})


ENGINES: dict[str, type[EngineFunctions]] = {"duckdb": DuckDBFunctions, "spark": SparkFunctions}


def check_functions(expression: exp.Expression, context: RewriteContext) -> exp.Expression:
    engine = ENGINES.get(context.dialect)
    if engine is None:
        raise PolicyViolation(
            text("queries in the {dialect} dialect are not supported", dialect=context.dialect)
        )
    for table in expression.find_all(exp.Table):
        if isinstance(table.this, exp.Func):
            raise PolicyViolation(
                text("table functions are not allowed: {name}", name=function_name(table.this))
            )
    refused = unsupported_functions(expression, context.dialect)
    if refused:
        raise PolicyViolation(text("function not allowed: {names}", names=", ".join(refused)))
    return expression


def unsupported_functions(expression: exp.Expression, engine: str) -> list[str]:
    """Names of the functions in `expression` that `engine` does not allow, in order of appearance."""
    allowed = ENGINES[engine]
    names = [function_name(f) for f in expression.find_all(exp.Func) if not allowed.allows(f)]
    return list(dict.fromkeys(names))


def function_name(function: exp.Func) -> str:
    if isinstance(function, exp.Anonymous):
        return function.name
    return function.sql_name()
