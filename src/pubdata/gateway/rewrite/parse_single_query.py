"""Parse the user's SQL into exactly one query expression, or refuse it.

Several statements in one request would let a harmless-looking query carry a second one past a
check that only looked at the first, so anything but a single statement is refused. Comments are
dropped so that nothing the user wrote travels into the generated SQL outside the parsed tree.

Nesting is bounded: sqlglot parses and prints recursively, so a few dozen nested parentheses would
otherwise end in a `RecursionError` (a 500, not an answer), and a 50 000-term ``1+1+…`` chain would
cost every later rule seconds of work before the engine refused it for its own depth limit.

Example:
    >>> parse_single_query("SELECT name FROM persons -- hello").sql()
    'SELECT name FROM persons'
    >>> parse_single_query("SELECT 1; SELECT 2")
    Traceback (most recent call last):
    ...
    pubdata.gateway.policy_types.PolicyViolation: exactly one statement is allowed, found 2
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, TokenError

from pubdata.gateway.policy_types import PolicyViolation
from pubdata.gateway.rewrite.keep_user_names import SOURCE
from pubdata.messages import text

#: Deepest expression tree accepted; real queries stay far below it, DuckDB stops at 1000.
MAX_DEPTH = 250


def parse_single_query(sql: str, dialect: str = "duckdb") -> exp.Expression:
    try:
        statements = [
            s for s in sqlglot.parse(sql, read=dialect, error_level=ErrorLevel.RAISE) if s is not None
        ]
    except (ParseError, TokenError) as error:
        raise PolicyViolation(
            text("the query could not be parsed: {error}", error=_first_line(error))
        ) from None
    except RecursionError:
        raise PolicyViolation(text("the query is nested too deeply to be checked")) from None
    if len(statements) != 1:
        raise PolicyViolation(text("exactly one statement is allowed, found {count}", count=len(statements)))
    statement = statements[0]
    if not isinstance(statement, exp.Expression):
        raise PolicyViolation(text("only queries are allowed"))
    if _depth_exceeds(statement, MAX_DEPTH):
        raise PolicyViolation(
            text("the query is nested too deeply (more than {depth} levels)", depth=MAX_DEPTH)
        )
    for node in statement.walk():
        node.comments = None
    statement.meta[SOURCE] = sql  # `keep_user_names` names columns after the text as written
    return statement


def _depth_exceeds(root: exp.Expression, limit: int) -> bool:
    """Iterative, so that measuring a deep tree cannot overflow the stack itself."""
    pending = [(root, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in node.iter_expressions())
    return False


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:200] if str(error) else type(error).__name__
