"""Keyed pseudonyms (GB/T 37964 假名化): HMAC-SHA256 computed by the engine, keyed per grant.

A plain hash of an identity number is no pseudonym: there are few enough numbers to hash them all.
A key per grant makes the tokens of two consumers unlinkable, and the key must never appear in
anything a user can see — not the SQL text, not a log. So the SQL names only session variables
(``getvariable('__pk_<slot>_i')`` and ``…_o``) and the engine sets them, per request, to the two
padded keys of RFC 2104: ``HMAC(K, m) = H((K' ⊕ opad) ‖ H((K' ⊕ ipad) ‖ m))``. Either padded key
gives the key back, so they are as secret as the key itself.

DuckDB folds a variable into the plan as a constant, so ``EXPLAIN`` would print it: the rewrite must
refuse ``EXPLAIN`` and the engine must not show plans or keep them in logs. Spark has no
``getvariable``: its engine substitutes the references before it runs a query.

Example:
    >>> import duckdb, hmac, hashlib
    >>> con = duckdb.connect()
    >>> for name, value in pseudonym_variables("g7", b"a key of sixteen+").items():
    ...     _ = con.execute(f"SET VARIABLE {name} = $1", [value])
    >>> sql = pseudonym(exp.Literal.string("33010219800101123X"), slot="g7").sql("duckdb")
    >>> "sixteen" in sql, con.sql("SELECT " + sql).fetchall()[0][0]
    (False, '14828468fa131eef8d7c')
    >>> hmac.new(b"a key of sixteen+", b"33010219800101123X", hashlib.sha256).hexdigest()[:20]
    '14828468fa131eef8d7c'
"""

from __future__ import annotations

import hashlib
import re

from sqlglot import exp

from pubdata.errors import InputError
from pubdata.gateway.deid_sql import ColumnLike, as_text, concat, substring, text
from pubdata.messages import text as sentence

#: SHA-256 block size in bytes: keys are padded (or first hashed) to this length.
BLOCK_SIZE = 64
#: The shortest key accepted: shorter ones can be searched.
MIN_KEY_BYTES = 16
#: Reserved prefix of the session variables that hold padded keys; the SQL layer forbids them to users.
VARIABLE_PREFIX = "__pk_"
_SLOT = re.compile(r"^[a-z0-9_]{1,40}$")


def _check_slot(slot: str) -> str:
    if not _SLOT.match(slot):
        raise InputError(sentence("pseudonym slot must be 1-40 of a-z, 0-9 and _, not {slot!r}", slot=slot))
    return slot


def variable_names(slot: str) -> tuple[str, str]:
    """The inner- and outer-key variable names of `slot`."""
    base = VARIABLE_PREFIX + _check_slot(slot)
    return f"{base}_i", f"{base}_o"


def pseudonym_variables(slot: str, key: bytes) -> dict[str, bytes]:
    """What the engine must ``SET VARIABLE`` (as BLOB parameters, never as SQL literals) for `slot`."""
    if len(key) < MIN_KEY_BYTES:
        raise InputError(
            sentence(
                "a pseudonym key needs at least {least} bytes, got {got}", least=MIN_KEY_BYTES, got=len(key)
            )
        )
    padded = (hashlib.sha256(key).digest() if len(key) > BLOCK_SIZE else key).ljust(BLOCK_SIZE, b"\0")
    inner, outer = variable_names(slot)
    return {inner: bytes(b ^ 0x36 for b in padded), outer: bytes(b ^ 0x5C for b in padded)}


def _sha256_hex(value: exp.Expression) -> exp.Expression:
    return exp.SHA2(this=value, length=exp.Literal.number(256))


def pseudonym(column: ColumnLike, slot: str, length: int = 20) -> exp.Expression:
    """`14828468fa131eef8d7c`: the first `length` (16–64) hex characters of HMAC-SHA256 of the value
    as UTF-8 text, keyed by the grant's key in `slot`; the same value gives the same token within a
    grant and an unrelated one under another key. NULL stays NULL."""
    if not 16 <= length <= 64:
        raise InputError(
            sentence("pseudonym length must be 16-64 hex characters, not {length}", length=length)
        )
    inner, outer = (
        exp.Anonymous(this="GETVARIABLE", expressions=[text(name)]) for name in variable_names(slot)
    )
    message = exp.Encode(this=as_text(column), charset=text("utf-8"))
    inner_hash = exp.Unhex(this=_sha256_hex(concat(inner, message)))
    return substring(_sha256_hex(concat(outer, inner_hash)), 1, length)
