"""Errors of the sandboxed engine, and the scrubbing that keeps secrets and paths out of them.

DuckDB quotes values back in its messages ("Could not convert string '…'"), so a pseudonym key set as
a variable could reach the user through an error. Every message leaving the engine passes a
`Scrubber` that knows the request's secret values in each form DuckDB may print them (text, blob
escapes, hex) and the server directories that a consumer has no business learning.

Example:
    >>> scrub = Scrubber([b"k3y\\x01"], {"/srv/pubdata/data": "<data>"})
    >>> print(scrub("Conversion Error: 'k3y\\\\x01' in /srv/pubdata/data/persons/part-0.parquet"))
    Conversion Error: '***' in <data>/persons/part-0.parquet
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pubdata.errors import PubdataError
from pubdata.messages import text

#: What a scrubbed secret is replaced by.
REDACTED = "***"


class QueryError(PubdataError):
    """The query failed in the engine; the message is safe to show to the person who sent it."""


class QueryRefused(QueryError):
    """The engine will not run this SQL at all (a statement kind, relation or function it forbids)."""


class QueryTimeout(QueryError):
    """The query ran past its time budget and was interrupted; the engine is ready for the next one."""

    def __init__(self, budget_s: float) -> None:
        super().__init__(
            text("the query exceeded its time budget of {budget:g} s and was stopped", budget=budget_s)
        )
        self.budget_s = budget_s


def blob_text(value: bytes) -> str:
    """How DuckDB prints a BLOB: printable ASCII as is, everything else (and quotes) as ``\\xHH``."""
    return "".join(chr(b) if 32 <= b < 127 and b not in (0x27, 0x5C) else f"\\x{b:02X}" for b in value)


def renderings(value: bytes | str) -> set[str]:
    """Every form in which a secret value can appear in a DuckDB message or a Python repr."""
    raw = value.encode() if isinstance(value, str) else value
    forms = {raw.hex(), raw.hex().upper(), blob_text(raw), repr(value), repr(raw)}
    forms.add(raw.decode("utf-8", errors="replace"))
    if isinstance(value, str):
        forms.add(value)
    return {f for f in forms if f}


class Scrubber:
    """Replaces secrets and server paths in a message; longest forms first, so no fragment survives."""

    def __init__(self, secrets: Iterable[bytes | str], paths: Mapping[str, str] | None = None) -> None:
        forms: set[str] = set()
        for secret in secrets:
            forms |= renderings(secret)
        self._replacements = sorted(
            [(form, REDACTED) for form in forms] + list((paths or {}).items()),
            key=lambda pair: len(pair[0]),
            reverse=True,
        )

    def __call__(self, message: str) -> str:
        for needle, replacement in self._replacements:
            message = message.replace(needle, replacement)
        return message
