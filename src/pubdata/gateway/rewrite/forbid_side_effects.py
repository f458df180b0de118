"""Refuse everything that is not a read-only query: statements, and statement-like nodes inside one.

The locked engine already refuses file access and settings, but it still allows `CREATE MACRO`,
`SET VARIABLE`, `ATTACH ':memory:'` and dropping registered views, so the SQL layer must refuse
them. The top-level statement must be a query (SELECT, a set operation, or a parenthesised one); a
bare `VALUES` list is refused too, since it reads no data and gains nothing from the gateway. Inside
the query, nodes that create, change or describe objects (`SELECT … INTO`, row locks), parameters
(`?`, `$1`, `@@x`) and anything the parser could only keep as an opaque command are refused.

Example:
    >>> from pubdata.gateway.policy_types import QueryPolicy, RewriteContext
    >>> from pubdata.gateway.rewrite.parse_single_query import parse_single_query
    >>> context = RewriteContext(QueryPolicy())
    >>> forbid_side_effects(parse_single_query("PRAGMA version"), context)
    Traceback (most recent call last):
    ...
    pubdata.gateway.policy_types.PolicyViolation: only queries are allowed, not PRAGMA
"""

from __future__ import annotations

from sqlglot import exp

from pubdata.gateway.policy_types import PolicyViolation, RewriteContext
from pubdata.messages import text

QUERY_STATEMENTS: tuple[type[exp.Expression], ...] = (exp.Select, exp.SetOperation, exp.Subquery)

#: Node kinds that never belong in a read-only query, with the word the refusal uses for them.
FORBIDDEN_NODES: dict[type[exp.Expression], str] = {
    exp.Command: "",
    exp.Create: "CREATE",
    exp.Drop: "DROP",
    exp.Alter: "ALTER",
    exp.Insert: "INSERT",
    exp.Update: "UPDATE",
    exp.Delete: "DELETE",
    exp.Merge: "MERGE",
    exp.TruncateTable: "TRUNCATE",
    exp.Copy: "COPY",
    exp.Export: "EXPORT",
    exp.Attach: "ATTACH",
    exp.Detach: "DETACH",
    exp.Install: "INSTALL",
    exp.Set: "SET",
    exp.SetItem: "SET",
    exp.Pragma: "PRAGMA",
    exp.Use: "USE",
    exp.Transaction: "BEGIN",
    exp.Commit: "COMMIT",
    exp.Rollback: "ROLLBACK",
    exp.Describe: "DESCRIBE",
    exp.Show: "SHOW",
    exp.Summarize: "SUMMARIZE",
    exp.Analyze: "ANALYZE",
    exp.LoadData: "LOAD DATA",
    exp.Kill: "KILL",
    exp.Grant: "GRANT",
    exp.Revoke: "REVOKE",
    exp.Refresh: "REFRESH",
    exp.Cache: "CACHE",
    exp.Uncache: "UNCACHE",
    exp.Execute: "EXECUTE",
    exp.Declare: "DECLARE",
    exp.Comment: "COMMENT",
    exp.Put: "PUT",
    exp.Get: "GET",
    exp.Into: "SELECT … INTO",
    exp.Lock: "row locks (FOR UPDATE/SHARE)",
    exp.Placeholder: "query parameters",
    exp.Parameter: "query parameters",
    exp.SessionParameter: "session parameters",
}


def forbid_side_effects(expression: exp.Expression, context: RewriteContext) -> exp.Expression:
    if not isinstance(expression, QUERY_STATEMENTS):
        raise PolicyViolation(text("only queries are allowed, not {kind}", kind=_statement_kind(expression)))
    for node in expression.walk():
        for kind, word in FORBIDDEN_NODES.items():
            if isinstance(node, kind):
                raise PolicyViolation(
                    text("not allowed in a query: {what}", what=word or _statement_kind(node))
                )
    return expression


def _statement_kind(node: exp.Expression) -> str:
    """The statement keyword the user wrote, without echoing the rest of the statement."""
    if isinstance(node, exp.Command):
        return str(node.this).split()[0].upper() if node.this else "this statement"
    word = FORBIDDEN_NODES.get(type(node))
    if word:
        return word
    if isinstance(node, exp.Values):
        return "a bare VALUES list (write SELECT * FROM (VALUES …))"
    return "this statement"
