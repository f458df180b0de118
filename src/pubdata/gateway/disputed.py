"""Records under a flagged objection (REQ-12), as the gateway marks them in every answer.

The workflow (`pubdata.workflow.objections`) flags an objection's records when the competent
department accepts it and unflags them once the provider has verified them. For each request the
gateway looks up the flagged records of the entries it reads and gives their `TablePolicy` a
`disputed` predicate over the raw key fields; the policy subquery turns it into the ``_disputed``
column (`rewrite.replace_tables`), a row-level answer shows it (`rewrite.mark_disputed`), and every
answer that read such an entry carries ``X-Pubdata-Disputed: <entry>=<records>``. An entry without
flagged records gets no predicate, so its queries are rewritten exactly as before.

The header counts the flagged records the answer could contain — among the rows the caller's policy
shows (its grant's region and row filter), not the whole entry: `count_disputed` runs one count over
the same policy subqueries the answer reads. Counting the whole entry would tell a consumer in 嘉兴
how many records are disputed in 杭州, and a header saying ``=1000`` over an answer of which no row
is marked is a false alarm. An entry whose visible rows hold no flagged record is left out.

Values become typed literals built by sqlglot, never SQL text, whatever an objection holds.

Example:
    >>> from pubdata.db.models import CatalogEntry, CatalogField
    >>> from pubdata.catalog.classes import FieldType
    >>> entry = CatalogEntry(
    ...     code="pensions",
    ...     key_fields=["id_number", "year"],
    ...     fields=[CatalogField(name="id_number"), CatalogField(name="year", data_type=FieldType.INTEGER)],
    ... )
    >>> disputed_predicate(entry, [{"id_number": "x'1", "year": 2024}]).sql("duckdb")
    '("id_number" = \\'x\\'\\'1\\' AND "year" = 2024)'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlglot import exp

from pubdata.catalog.classes import FieldType
from pubdata.db.models import CatalogEntry, CatalogField, Objection
from pubdata.gateway.engine import SandboxedEngine
from pubdata.gateway.policy_types import DISPUTED_COLUMN, QueryPolicy
from pubdata.gateway.rewrite.replace_tables import policy_subquery

#: The objection state in which its records are disputed; the workflow's state table uses it.
FLAGGED = "flagged"
#: The response header naming, per entry read, how many of its records are disputed.
DISPUTED_HEADER = "X-Pubdata-Disputed"

_CAST_TYPES = {FieldType.DATE: "DATE", FieldType.TIMESTAMP: "TIMESTAMP"}


def flagged_records(session: Session, entries: Mapping[str, CatalogEntry]) -> dict[str, list[dict[str, Any]]]:
    """Entry code → its distinct flagged records (``{key field: value}``), for entries that have any."""
    codes = {entry.id: code for code, entry in entries.items()}
    if not codes:
        return {}
    rows = session.execute(
        select(Objection.entry_id, Objection.record_keys)
        .where(Objection.entry_id.in_(codes), Objection.state == FLAGGED)
        .order_by(Objection.id)
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for entry_id, records in rows:
        held = found.setdefault(codes[entry_id], [])
        held.extend(r for r in records if r not in held)
    return {code: records for code, records in found.items() if records}


def _literal(field: CatalogField | None, value: Any) -> exp.Expression:
    kind = field.data_type if field is not None else FieldType.STRING
    if kind in (FieldType.INTEGER, FieldType.DECIMAL) and not isinstance(value, bool):
        return exp.Literal.number(value)
    if kind is FieldType.BOOLEAN:
        return exp.Boolean(this=bool(value))
    literal = exp.Literal.string(str(value))
    return exp.cast(literal, _CAST_TYPES[kind]) if kind in _CAST_TYPES else literal


def disputed_predicate(entry: CatalogEntry, records: Sequence[Mapping[str, Any]]) -> exp.Expression:
    """True for exactly the records named: ``k IN (…)`` for one key field, else an OR of ANDs."""
    fields = {f.name: f for f in entry.fields}
    keys = [str(k) for k in entry.key_fields]
    named = [r for r in records if all(k in r for k in keys)]
    if not keys or not named:
        return exp.false()

    def column(name: str) -> exp.Column:
        return exp.column(exp.to_identifier(name, quoted=True))

    if len(keys) == 1:
        return column(keys[0]).isin(*(_literal(fields.get(keys[0]), r[keys[0]]) for r in named))
    matches = [exp.and_(*(column(k).eq(_literal(fields.get(k), r[k])) for k in keys)) for r in named]
    either: exp.Expression = exp.paren(matches[0], copy=False)
    for match in matches[1:]:
        either = exp.Or(this=either, expression=exp.paren(match, copy=False))
    return either


def with_disputed(
    policy: QueryPolicy,
    entries: Mapping[str, CatalogEntry],
    flagged: Mapping[str, Sequence[Mapping[str, Any]]],
) -> QueryPolicy:
    """`policy` with a `disputed` predicate on every entry that has flagged records."""
    if not flagged:
        return policy
    tables = dict(policy.tables)
    for code, records in flagged.items():
        if code in tables and code in entries:
            tables[code] = dataclasses.replace(
                tables[code], disputed=disputed_predicate(entries[code], records)
            )
    return QueryPolicy(tables, policy.row_limit)


def disputed_in_view(policy: QueryPolicy, codes: Iterable[str]) -> exp.Query | None:
    """One query: per entry of `codes` with a `disputed` predicate, how many of the rows its policy
    subquery shows are flagged (``entry``, ``records``); None when no entry has one.

    Example:
        >>> from pubdata.gateway.policy_types import TablePolicy
        >>> persons = TablePolicy.build(
        ...     "persons",
        ...     {"name": exp.column("name")},
        ...     row_filter=exp.column("division_code").like(exp.Literal.string("3304%")),
        ...     disputed=exp.column("id").isin(exp.Literal.string("7")),
        ... )
        >>> print(disputed_in_view(QueryPolicy.of(persons), ["persons"]).sql("duckdb"))
        ... # doctest: +NORMALIZE_WHITESPACE
        SELECT 'persons' AS entry, COUNT(*) AS records FROM (SELECT __base_persons.name AS name,
          COALESCE(__base_persons.id IN ('7'), FALSE) AS _disputed FROM __base_persons
          WHERE __base_persons.division_code LIKE '3304%') AS persons WHERE persons._disputed
    """
    counts: list[exp.Select] = []
    for code in codes:
        table = policy.lookup(code)
        if table is None or table.disputed is None:
            continue
        view = policy_subquery(table, exp.Table(this=exp.to_identifier(code)))
        counts.append(
            exp.select(
                exp.alias_(exp.Literal.string(code), "entry"),
                exp.alias_(exp.func("count", exp.Star()), "records"),
            )
            .from_(view)
            .where(exp.column(DISPUTED_COLUMN, table=code))
        )
    if not counts:
        return None
    query: exp.Query = counts[0]
    for count in counts[1:]:
        query = exp.union(query, count, distinct=False)
    return query


def count_disputed(
    engine: SandboxedEngine,
    policy: QueryPolicy,
    codes: Iterable[str],
    tables: Mapping[str, Sequence[str]],
    variables: Mapping[str, bytes | str],
) -> dict[str, int]:
    """Entry code → its flagged records among the rows the caller may see, for the header; entries
    with none are left out. `tables` and `variables` are the answer's own (the engine's inputs)."""
    query = disputed_in_view(policy, codes)
    if query is None:
        return {}
    found = engine.run(query.sql("duckdb"), tables, variables).read_all().to_pylist()
    return {str(row["entry"]): int(row["records"]) for row in found if row["records"]}
