"""Compiling an entry and a grant into the `TablePolicy` the rewrite enforces (REQ-27, 32).

Visible columns are the granted fields (all fields for unconditional access); each is masked by
the grant's choice, else by the default rule for its level and PII kind, else shown as stored. The
row filter is the grant's region (known division codes under its prefix) and its checked predicate.
Pseudonym keys are derived per grant, so two consumers' pseudonyms cannot be linked. Whether access
is allowed at all is decided in `pubdata.gateway.access`; this module only says *what* an allowed
caller sees.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Mapping
from typing import Any

from sqlglot import exp

from pubdata.catalog.classes import FieldType
from pubdata.db.models import CatalogEntry, Grant, Organisation
from pubdata.gateway.access_rules import AccessDenied, AccessRule
from pubdata.gateway.deid import build_deid, default_deid, pseudonym_variables
from pubdata.gateway.grants import RAW, grant_state, parse_row_predicate
from pubdata.gateway.policy_types import TablePolicy
from pubdata.gateway.region_filter import region_filter
from pubdata.keys import derive_key
from pubdata.messages import text


def _column(name: str) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True))


def _fingerprint(columns: Mapping[str, exp.Expression], row_filter: exp.Expression | None) -> int:
    """A stable version for policies without a grant: it changes exactly when what they show does."""
    text = "\n".join(f"{n}={e.sql('duckdb')}" for n, e in columns.items())
    text += "\nWHERE " + (row_filter.sql("duckdb") if row_filter is not None else "")
    return zlib.crc32(text.encode("utf-8")) & 0x7FFFFFFF


def compile_table_policy(
    entry: CatalogEntry,
    grant: Grant | None,
    principal_org: Organisation | None,
    master_key: bytes,
    now: dt.datetime,
    *,
    slot: str | None = None,
) -> tuple[TablePolicy, dict[str, bytes]]:
    """The policy of `entry` for `principal_org` under `grant` (None: unconditional defaults), and
    the pseudonym variables it needs. Checks nothing about *whether* access is allowed (`decide`
    does), only that a given grant belongs to this entry and organisation and is active at `now`."""
    if principal_org is not None and principal_org.id == entry.provider_id:
        raw = {f.name: _column(f.name) for f in entry.fields}
        return TablePolicy.build(entry.code, raw, version=_fingerprint(raw, None)), {}
    if grant is not None and (
        grant.entry_id != entry.id
        or principal_org is None
        or grant.organisation_id != principal_org.id
        or grant_state(grant, now) != "active"
    ):
        raise AccessDenied(
            text("grant {grant} does not allow this access now", grant=grant.id), AccessRule.GRANT_NOT_ACTIVE
        )
    slot = slot or (f"g{grant.id}" if grant is not None else "default")
    visible = [f for f in entry.fields if grant is None or f.name in grant.fields]
    choices: Mapping[str, Any] = grant.deid if grant is not None else {}
    columns: dict[str, exp.Expression] = {}
    pseudonyms = False
    for f in visible:
        chosen = choices.get(f.name)
        name = chosen["function"] if chosen else default_deid(f.level, f.pii_kind)
        params = dict(chosen["params"]) if chosen else {}
        if name is None or name == RAW:
            columns[f.name] = _column(f.name)
            continue
        if name == "pseudonym":
            params["slot"], pseudonyms = slot, True
        columns[f.name] = build_deid(name, _column(f.name), **params)
    row_filter = _row_filter(entry, grant)
    variables: dict[str, bytes] = {}
    if pseudonyms and grant is not None:
        variables = pseudonym_variables(slot, derive_key(master_key, f"grant:{grant.id}"))
    version = grant.policy_version if grant is not None else _fingerprint(columns, row_filter)
    return TablePolicy.build(entry.code, columns, row_filter=row_filter, version=version), variables


def _row_filter(entry: CatalogEntry, grant: Grant | None) -> exp.Expression | None:
    """The grant's region (known divisions under the prefix only, `region_filter`) AND its predicate."""
    if grant is None:
        return None
    parts: list[exp.Expression] = []
    if grant.region_prefix and grant.region_field:
        types = {f.name: f.data_type for f in entry.fields}
        code: exp.Expression = _column(grant.region_field)
        if types.get(grant.region_field) != FieldType.STRING:  # a number-typed code compares as text
            code = exp.cast(code, exp.DataType.build("VARCHAR"))
        parts.append(region_filter(code, grant.region_prefix))
    if grant.row_predicate:
        # Parsed and checked again: the stored text is data, and the entry's fields may have changed.
        parts.append(parse_row_predicate(grant.row_predicate, {f.name for f in entry.fields}))
    if not parts:
        return None
    combined = parts[0]
    for part in parts[1:]:
        combined = exp.And(this=exp.Paren(this=combined), expression=exp.Paren(this=part))
    return combined
