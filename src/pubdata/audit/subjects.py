"""Keyed hashes of data subjects, so the log can answer "who saw data about X" without holding X (REQ-41).

A plain SHA-256 of an identity number is no protection: there are few enough numbers to hash them
all. The index therefore stores HMAC-SHA256 under the workspace's ``audit-subject`` key, which never
enters the database. The query path can compute the same hashes inside the engine, over a result's
identity column, with `subject_hash_sql` and the variables of `subject_hash_variables` (the key reaches
DuckDB as a parameter, never as SQL text).

Example:
    >>> import duckdb, tempfile, pathlib
    >>> home = pathlib.Path(tempfile.mkdtemp())
    >>> con = duckdb.connect()
    >>> for name, value in subject_hash_variables(home).items():
    ...     _ = con.execute(f"SET VARIABLE {name} = $1", [value])
    >>> sql = subject_hash_sql(exp.Literal.string(" 33010219800101123x")).sql("duckdb")
    >>> con.sql("SELECT " + sql).fetchall()[0][0] == subject_hash(home, "33010219800101123X")
    True
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from sqlglot import exp

from pubdata.gateway.deid_pseudonym import pseudonym, pseudonym_variables
from pubdata.identifiers import normalise_id_number
from pubdata.keys import workspace_key

#: Pseudonym slot of the subject key in the engine (its variables are reserved ``__pk_`` names).
SUBJECT_SLOT = "audit_subject"


def normalise_subject(value: str) -> str:
    """Identity numbers and credit codes share one normal form: ASCII, no spaces, upper case."""
    return normalise_id_number(value)


def subject_hash(home: Path, value: str) -> str:
    """HMAC-SHA256 (hex) of the normalised identity number or USCC under the subject key."""
    key = workspace_key(home, "audit-subject")
    return hmac.new(key, normalise_subject(value).encode("utf-8"), hashlib.sha256).hexdigest()


def subject_hash_variables(home: Path) -> dict[str, bytes]:
    """Engine variables (BLOB parameters) that `subject_hash_sql` reads."""
    return pseudonym_variables(SUBJECT_SLOT, workspace_key(home, "audit-subject"))


def subject_hash_sql(column: exp.Expression) -> exp.Expression:
    """`subject_hash` as a portable SQL expression over a text column (already-normalised data
    needs only the trimming and upper-casing done here; full-width digits are ingestion's job)."""
    normal = exp.Upper(
        this=exp.Replace(
            this=exp.Trim(this=exp.cast(column, exp.DataType.Type.TEXT)),
            expression=exp.Literal.string(" "),
            replacement=exp.Literal.string(""),
        )
    )
    return pseudonym(normal, SUBJECT_SLOT, length=64)
