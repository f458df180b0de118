"""What a failed query tells its sender: the kind of failure, and the sender's own names, never DuckDB's text.

DuckDB explains an error with a window of the SQL it ran (``LINE 3: …`` and a caret), and the SQL it
ran is the *enforced* query: the grant's row predicate with its literals (identity numbers in
``NOT IN (…)``), the region filter, the masks and the internal ``__base_*`` names. Its hints
("Candidate bindings", "Did you mean") list columns of the policy subquery. So the message is never
passed on. It is read for two things only:

- its class, from the ``<Kind> Error:`` prefix DuckDB puts on every message (and that survives
  Arrow's wrapping of errors raised while streaming), and a few fixed phrases inside it, giving a
  stable code (`FailureKind`) and a sentence made from a constant template;
- names: a double-quoted name or ``with name x`` in the message, or a word under the caret, is
  repeated only if it is an identifier or function name *of the sender's own SQL* (its tokens, never
  its string or number literals), and then with the line and column where the sender wrote it.

Example:
    >>> message = (
    ...     "Conversion Error: Could not convert string 'x' to INT32\\n\\n"
    ...     "LINE 1: ...WHERE id NOT IN ('330881196502251631')) AS t WHERE occupation = 1\\n"
    ...     + " " * 62 + "^" * 14)
    >>> failure = explain(message, "SELECT name FROM persons\\nWHERE occupation = 1")
    >>> failure.kind.value
    'conversion'
    >>> print(failure)  # doctest: +NORMALIZE_WHITESPACE
    the query failed near occupation (line 2, column 7):
    a value could not be converted to the type the query needs
    >>> str(explain("Binder Error: Referenced column \\"__base_p\\" not found", "SELECT 1"))
    'the query failed: a column, table or alias it names does not exist here or is ambiguous'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum

from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import SqlglotError
from sqlglot.tokenizer_core import TokenType

from pubdata.gateway.engine_errors import QueryError
from pubdata.messages import Text, text


class FailureKind(StrEnum):
    """Stable codes of engine failures (the API answers them as ``kind``; the audit keeps them)."""

    CONVERSION = "conversion"
    BINDER = "binder"
    CATALOG = "catalog"
    OUT_OF_RANGE = "out_of_range"
    OVERFLOW = "overflow"
    DIVISION_BY_ZERO = "division_by_zero"
    REGEX = "regex"
    SUBQUERY_ROWS = "subquery_rows"
    INVALID_INPUT = "invalid_input"
    SYNTAX = "syntax"
    OUT_OF_MEMORY = "out_of_memory"
    NOT_SUPPORTED = "not_supported"
    ENGINE = "engine"


class QueryFailed(QueryError):
    """The engine could not run the query; `kind` says why, the message names only what the sender wrote."""

    def __init__(self, message: Text, kind: FailureKind) -> None:
        super().__init__(message)
        self.kind = kind


#: DuckDB's message prefix → kind, before the phrases below refine it.
_PREFIXES: dict[str, FailureKind] = {
    "Conversion Error": FailureKind.CONVERSION,
    "Binder Error": FailureKind.BINDER,
    "Catalog Error": FailureKind.CATALOG,
    "Out of Range Error": FailureKind.OUT_OF_RANGE,
    "Invalid Input Error": FailureKind.INVALID_INPUT,
    "Parser Error": FailureKind.SYNTAX,
    "Syntax Error": FailureKind.SYNTAX,
    "Out of Memory Error": FailureKind.OUT_OF_MEMORY,
    "Not implemented Error": FailureKind.NOT_SUPPORTED,
}

#: Phrases that name a more precise kind, whatever the prefix (RE2's messages for bad patterns).
_PHRASES: tuple[tuple[re.Pattern[str], FailureKind], ...] = (
    (re.compile(r"Division by zero", re.I), FailureKind.DIVISION_BY_ZERO),
    (re.compile(r"\bOverflow\b", re.I), FailureKind.OVERFLOW),
    (re.compile(r"More than one row returned by a subquery", re.I), FailureKind.SUBQUERY_ROWS),
    (
        re.compile(
            r"^Invalid Input Error: (missing [)\]]|unexpected \)|invalid (escape|character class|"
            r"repetition|named capture|perl operator|UTF-8|nested repetition)|bad repetition|"
            r"trailing \\|missing argument to repetition|no argument for repetition)",
            re.I,
        ),
        FailureKind.REGEX,
    ),
)

_REASONS: dict[FailureKind, Callable[[], Text]] = {
    FailureKind.CONVERSION: lambda: text("a value could not be converted to the type the query needs"),
    FailureKind.BINDER: lambda: text("a column, table or alias it names does not exist here or is ambiguous"),
    FailureKind.CATALOG: lambda: text("a function, type or relation it names does not exist"),
    FailureKind.OUT_OF_RANGE: lambda: text("a value is out of the range of its type"),
    FailureKind.OVERFLOW: lambda: text("a calculation overflowed its type"),
    FailureKind.DIVISION_BY_ZERO: lambda: text("it divides by zero"),
    FailureKind.REGEX: lambda: text("a regular expression is not valid"),
    FailureKind.SUBQUERY_ROWS: lambda: text("a subquery used as a value returned more than one row"),
    FailureKind.INVALID_INPUT: lambda: text("a function was given a value it cannot use"),
    FailureKind.SYNTAX: lambda: text("the engine could not parse it"),
    FailureKind.OUT_OF_MEMORY: lambda: text("it needed more memory than a query may use"),
    FailureKind.NOT_SUPPORTED: lambda: text("it uses something the engine does not support"),
    FailureKind.ENGINE: lambda: text("the engine reported an error"),
}  # fmt: skip

_QUOTED = re.compile(r'"([^"\n]{1,128})"|\bwith name ([^\s!"]{1,128})')
_CARET = re.compile(r"^(LINE \d+: )(.*)\n( *)(\^+)", re.M)
_NAME = re.compile(r"[^\W\d][\w$]*")
_NAMES = {TokenType.VAR, TokenType.IDENTIFIER}
_LITERALS = {
    TokenType.STRING,
    TokenType.NUMBER,
    TokenType.NATIONAL_STRING,
    TokenType.RAW_STRING,
    TokenType.BIT_STRING,
    TokenType.HEX_STRING,
    TokenType.BYTE_STRING,
    TokenType.HEREDOC_STRING,
    TokenType.UNICODE_STRING,
}


def kind_of(message: str) -> FailureKind:
    """The kind of a DuckDB message (``ENGINE`` when nothing known matches)."""
    for pattern, kind in _PHRASES:
        if pattern.search(message):
            return kind
    prefix = message.split(":", 1)[0].strip()
    return _PREFIXES.get(prefix, FailureKind.ENGINE)


def explain(message: str, source: str | None) -> QueryFailed:
    """The failure as its sender may read it; `source` is the SQL the sender wrote (None: no names)."""
    kind = kind_of(message)
    reason = _REASONS[kind]()
    place = _place(message, source) if source else None
    if place is None:
        return QueryFailed(text("the query failed: {reason}", reason=reason), kind)
    name, line, column = place
    return QueryFailed(
        text(
            "the query failed near {name} (line {line}, column {column}): {reason}",
            name=name,
            line=line,
            column=column,
            reason=reason,
        ),
        kind,
    )


def _place(message: str, source: str) -> tuple[str, int, int] | None:
    """The first name of the message that the sender wrote as a name, and where they wrote it."""
    written = _names_written(source)
    for candidate in _candidates(message):
        key = candidate.casefold()
        if key in written and not key.startswith("__"):
            start = written[key]
            line = source.count("\n", 0, start) + 1
            return candidate, line, start - (source.rfind("\n", 0, start) + 1) + 1
    return None


def _candidates(message: str) -> list[str]:
    found = [a or b for a, b in _QUOTED.findall(message)]
    for prefix, window, pad, caret in _CARET.findall(message):
        start = max(len(pad) - len(prefix), 0)
        found += _NAME.findall(window[start : start + len(caret)])
    return [f for f in found if _NAME.fullmatch(f)]


def _names_written(source: str) -> dict[str, int]:
    """Identifier and function-name tokens of the sender's SQL (case-folded) → first offset."""
    try:
        tokens = DuckDB().tokenize(source)
    except (SqlglotError, RecursionError):
        return {}
    names: dict[str, int] = {}
    for token, following in zip(tokens, [*tokens[1:], None], strict=True):
        called = following is not None and following.token_type == TokenType.L_PAREN
        named = token.token_type in _NAMES or (called and token.token_type not in _LITERALS)
        if named and _NAME.fullmatch(token.text):
            names.setdefault(token.text.casefold(), token.start)
    return names
