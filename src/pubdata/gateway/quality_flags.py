"""Rows kept with quality flags at ingest, as the gateway marks them in every answer (``_quality_flagged``).

Ingest under ``--policy flag`` keeps a bad row and writes its reasons to the table's `ROW_FLAGS`
column (NULL for a clean row). The gateway asks, per entry read, whether the version it serves
holds any such row, and only then gives the entry's policy a `quality_flagged` predicate; the rule
`rewrite.mark_flagged` turns it into the ``_quality_flagged`` column. An entry whose data is clean
is rewritten exactly as before, so its answers keep their shape.

The question is answered from the Parquet footers, not by reading the data: each row group's
statistics count the NULLs of `ROW_FLAGS`, and fewer NULLs than rows means flagged rows. A footer is
read once per file and remembered (a table's files never change once written). A file without the
statistics counts as flagged: the column is then shown, false on clean rows, rather than missing.

Example:
    >>> from pubdata.gateway.policy_types import QueryPolicy, TablePolicy
    >>> from sqlglot import exp
    >>> policy = QueryPolicy.of(TablePolicy.build("members", {"name": exp.column("name")}))
    >>> with_quality_flags(policy, {"members"}).tables["members"].quality_flagged.sql("duckdb")
    'NOT __row_flags IS NULL'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping
from functools import lru_cache
from urllib.parse import unquote, urlparse

import pyarrow.parquet as pq
from sqlglot import exp

from pubdata.db.models import CatalogEntry
from pubdata.gateway.policy_types import QueryPolicy
from pubdata.store.delta import DatasetStore
from pubdata.store.schema import ROW_FLAGS

#: Files whose footers are remembered; each entry is a few integers.
FOOTER_CACHE = 65_536


def _local_path(uri: str) -> str:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


@lru_cache(maxsize=FOOTER_CACHE)
def flagged_in_file(uri: str) -> bool:
    """Whether a Parquet file holds a row with `ROW_FLAGS` set (True when its footer cannot say)."""
    meta = pq.read_metadata(_local_path(uri))
    paths = [meta.schema.column(i).path for i in range(meta.num_columns)]
    if ROW_FLAGS not in paths:
        return False
    position = paths.index(ROW_FLAGS)
    for group in range(meta.num_row_groups):
        row_group = meta.row_group(group)
        stats = row_group.column(position).statistics
        if stats is None or not stats.has_null_count or stats.null_count < row_group.num_rows:
            return True
    return False


def any_flagged(files: Iterable[str]) -> bool:
    return any(flagged_in_file(uri) for uri in files)


def flagged_entries(store: DatasetStore, entries: Mapping[str, CatalogEntry]) -> frozenset[str]:
    """Codes of the entries whose current version holds rows kept with quality flags."""
    return frozenset(code for code, entry in entries.items() if any_flagged(store.file_uris(entry)))


def quality_flagged_predicate() -> exp.Expression:
    """True for a raw row stored with flags."""
    return exp.column(ROW_FLAGS).is_(exp.null()).not_()


def with_quality_flags(policy: QueryPolicy, codes: Collection[str]) -> QueryPolicy:
    """`policy` with a `quality_flagged` predicate on each entry of `codes` it holds."""
    if not codes:
        return policy
    tables = dict(policy.tables)
    for code in codes:
        if code in tables:
            tables[code] = dataclasses.replace(tables[code], quality_flagged=quality_flagged_predicate())
    return dataclasses.replace(policy, tables=tables)
