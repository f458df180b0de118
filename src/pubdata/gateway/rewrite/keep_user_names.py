"""Name unaliased answer columns after what the user wrote, not after sqlglot's re-print.

The engine names an unaliased column by printing its expression, and it prints the rewritten
query, not the user's: ``string_agg(x, ',')`` comes back from sqlglot as ``LISTAGG(x, ',')`` and
``list(x)`` as ``ARRAY_AGG(x)``, so the answer's header read ``listagg(x, ',')`` where plain DuckDB
says ``string_agg(x, ',')``. Where the re-print changed a function name or a string literal of a
top-level projection, the projection is aliased with the text the user wrote, printed the way
DuckDB prints it (names called in lower case, ``name`` and other keywords quoted, one space after a
comma, comments left out). Elsewhere the engine's own naming already matches the
user's query — DuckDB names ``count(*)`` ``count_star()`` and ``y+1`` ``(y + 1)`` either way — so
those are left alone rather than named by a text DuckDB would not use.

Only the columns that name the answer change: the outermost SELECT, or the leftmost branch of a set
operation. A span is used only when it parses back to the same expression, so a SELECT the token
scan misreads names nothing. Items that may expand to several columns (``*``, ``COLUMNS(…)``,
``UNNEST``) are never aliased.

Example:
    >>> from pubdata.gateway.policy_types import QueryPolicy, RewriteContext
    >>> from pubdata.gateway.rewrite.parse_single_query import parse_single_query
    >>> query = parse_single_query("SELECT string_agg(x, ','), count(*) FROM t")
    >>> keep_user_names(query, RewriteContext(QueryPolicy())).sql("duckdb")
    'SELECT LISTAGG(x, \\',\\') AS "string_agg(x, \\',\\')", COUNT(*) FROM t'
"""

from __future__ import annotations

import re
from functools import cache

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokenizer_core import Token, TokenType

from pubdata.gateway.policy_types import RewriteContext

#: ``meta`` key on the parsed statement: the SQL text it was parsed from (`parse_single_query`).
SOURCE = "pubdata_source"

_OPEN = {TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE}
_CLOSE = {TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE}
#: Tokens that end a SELECT list at its own depth.
_ENDS = {
    TokenType.FROM, TokenType.WHERE, TokenType.GROUP_BY, TokenType.HAVING, TokenType.QUALIFY,
    TokenType.WINDOW, TokenType.ORDER_BY, TokenType.LIMIT, TokenType.OFFSET, TokenType.FETCH,
    TokenType.UNION, TokenType.INTERSECT, TokenType.EXCEPT, TokenType.INTO, TokenType.SEMICOLON,
}  # fmt: skip
#: Calls that are syntax in one spelling and a call in another (``x::int`` is ``CAST(x AS INT)``),
#: and keywords before a parenthesis: never renames, and printed in capitals as written.
_NOT_CALLS = frozenset({"cast", "try_cast", "in", "over", "filter", "exists", "any", "all", "some", "values"})
#: Names the engine itself respells when it parses, so a re-print to its spelling names nothing new:
#: DuckDB names ``ifnull(x, 0)`` ``COALESCE(x, 0)`` whatever sqlglot prints.
_ENGINE_SPELLINGS = {"ifnull": "coalesce", "grouping_id": "grouping"}
#: Items that may stand for several columns: an alias would change the answer's shape.
_MANY = (exp.Star, exp.Columns, exp.Unnest, exp.Explode)
_PLAIN = re.compile(r"[a-z_][a-z0-9_]*")


def keep_user_names(expression: exp.Expression, context: RewriteContext) -> exp.Expression:
    source = expression.meta.get(SOURCE)
    select = _naming_select(expression)
    if not isinstance(source, str) or select is None:
        return expression
    dialect = Dialect.get_or_raise(context.dialect)
    try:
        spans = _projection_spans(dialect.tokenize(source))
    except SqlglotError:
        return expression
    if spans is None or len(spans) != len(select.expressions):
        return expression
    for item, tokens in zip(list(select.expressions), spans, strict=True):
        if isinstance(item, exp.Alias | exp.Column) or _stands_for_many(item):
            continue
        if _signature(tokens) == _signature(dialect.tokenize(item.sql(dialect))):
            continue
        try:
            same = sqlglot.parse_one(source[tokens[0].start : tokens[-1].end + 1], read=dialect) == item
        except SqlglotError:
            same = False
        if same:
            item.replace(exp.alias_(item.copy(), _text(source, tokens), quoted=True))
    return expression


def _naming_select(expression: exp.Expression) -> exp.Select | None:
    """The SELECT whose items name the answer's columns."""
    node: exp.Expression | None = expression
    while isinstance(node, exp.SetOperation):
        node = node.this
    return node if isinstance(node, exp.Select) else None


def _stands_for_many(item: exp.Expression) -> bool:
    return any(
        isinstance(n, _MANY) and not (isinstance(n, exp.Star) and isinstance(n.parent, exp.Count))
        for n in item.walk()
    )


def _projection_spans(tokens: list[Token]) -> list[list[Token]] | None:
    """The tokens of each item of the first SELECT at depth 0 (the outermost query's)."""
    depth = 0
    start = None
    for index, token in enumerate(tokens):
        if token.token_type in _OPEN:
            depth += 1
        elif token.token_type in _CLOSE:
            depth -= 1
        elif token.token_type == TokenType.SELECT and depth == 0:
            start = index + 1
            break
    if start is None:
        return None
    while start < len(tokens) and tokens[start].token_type in (TokenType.DISTINCT, TokenType.ALL):
        if start + 1 < len(tokens) and tokens[start + 1].token_type == TokenType.ON:
            return None  # DISTINCT ON (…): left to the engine's naming
        start += 1
    spans: list[list[Token]] = [[]]
    depth = 0
    for token in tokens[start:]:
        if depth == 0 and (token.token_type in _ENDS or token.token_type in _CLOSE):
            break
        if depth == 0 and token.token_type == TokenType.COMMA:
            spans.append([])
            continue
        if token.token_type in _OPEN:
            depth += 1
        elif token.token_type in _CLOSE:
            depth -= 1
        spans[-1].append(token)
    return spans if all(spans) else None


def _text(source: str, tokens: list[Token]) -> str:
    """The user's text of `tokens`, spaced as DuckDB prints a call: names called in lower case, one
    space after a comma, none inside brackets; any other spacing or comment made one space."""
    parts: list[str] = []
    for index, token in enumerate(tokens):
        if index:
            before = tokens[index - 1]
            spaced = token.start > before.end + 1
            if before.token_type == TokenType.COMMA or (
                spaced
                and before.token_type not in _OPEN
                and token.token_type not in _CLOSE | {TokenType.COMMA}
            ):
                parts.append(" ")
        written = source[token.start : token.end + 1]
        if _calls(token, tokens[index + 1 : index + 2]):
            written = written.lower()
        elif token.token_type in (TokenType.VAR, TokenType.IDENTIFIER):
            written = _name(token.text)
        parts.append(written)
    return "".join(parts)


def _name(name: str) -> str:
    """A column name as DuckDB prints it: bare when plain lower case and no keyword, else quoted."""
    if _PLAIN.fullmatch(name) and name not in _engine_keywords():
        return name
    return '"' + name.replace('"', '""') + '"'


@cache
def _engine_keywords() -> frozenset[str]:
    """DuckDB's keywords (``name``, ``year``, ``value`` …), which it quotes when it prints a name;
    read from the installed engine, so the names follow its version."""
    with duckdb.connect() as con:
        return frozenset(row[0] for row in con.sql("SELECT keyword_name FROM duckdb_keywords()").fetchall())


def _calls(token: Token, after: list[Token]) -> bool:
    return (
        bool(after)
        and after[0].token_type == TokenType.L_PAREN
        and token.token_type not in _OPEN | _CLOSE | {TokenType.STRING, TokenType.IDENTIFIER}
        and token.text.lower() not in _NOT_CALLS
    )


def _signature(tokens: list[Token]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The names called and the string literals: what a re-print may change and DuckDB names by."""
    called = tuple(
        _ENGINE_SPELLINGS.get(t.text.lower(), t.text.lower())
        for index, t in enumerate(tokens)
        if _calls(t, tokens[index + 1 : index + 2])
    )
    return called, tuple(t.text for t in tokens if t.token_type == TokenType.STRING)
