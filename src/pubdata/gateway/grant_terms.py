"""The terms of a grant, each checked before a grant (or a request for one) may name it.

A bad term would only show when a query fails or, worse, when it shows too much, so each is checked
when it is written: every field must exist, the region must be a real division prefix over a field
of the entry, the row predicate must parse and name only the entry's fields and portable functions,
every de-identification function must exist with valid parameters, and the period must lie ahead
and within ``max_grant_days``. Requests (`pubdata.workflow.requests`) check their cart with the
same functions, so a request can never ask for what no grant could give.

De-identification per field is ``{"function": <name in DEID_FUNCTIONS>, "params": {...}}`` (or just
the name); ``"raw"`` shares the field as stored — the provider's explicit choice, recorded in the
audit trail. A pseudonym's ``slot`` and key are assigned per grant when the policy is compiled.
Whether a choice is strong enough for the field's level and kind is the floor's question
(`pubdata.gateway.deid_floor`), asked where a grant is made or renewed, with the assessments on record.

Example:
    >>> fields = {"age", "division_code"}
    >>> parse_row_predicate("age >= 60 AND starts_with(division_code, '3304')", fields).sql()
    "age >= 60 AND STARTS_WITH(division_code, '3304')"
    >>> parse_row_predicate("name IN (SELECT name FROM other)", {"name"})
    Traceback (most recent call last):
    ...
    pubdata.errors.InputError: column row_predicate: not allowed in a row predicate: a subquery
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Final

from sqlglot import exp

from pubdata.db.models import CatalogEntry
from pubdata.divisions import divisions
from pubdata.errors import InputError, RuleViolation
from pubdata.gateway.deid import DEID_FUNCTIONS, build_deid
from pubdata.gateway.policy_types import RESERVED_PREFIX, PolicyViolation
from pubdata.gateway.rewrite.check_functions import SparkFunctions, function_name
from pubdata.gateway.rewrite.forbid_side_effects import FORBIDDEN_NODES
from pubdata.gateway.rewrite.parse_single_query import parse_single_query
from pubdata.messages import Text
from pubdata.messages import text as sentence
from pubdata.settings import Settings

#: The de-identification choice that shares a field as stored.
RAW: Final = "raw"
#: How far in the past a grant may start, so that "from today" works whatever the hour.
BACKDATE_TOLERANCE = dt.timedelta(days=1)
#: Top-level node kinds that give a truth value; anything else is not a predicate.
_PREDICATES = (exp.Predicate, exp.Connector, exp.Not, exp.Boolean, exp.StartsWith, exp.EndsWith)
#: Nodes a row predicate may not hold, with the words the refusal uses.
_NOT_IN_PREDICATE: dict[type[exp.Expr], str] = {
    exp.Query: "a subquery",
    exp.Subquery: "a subquery",
    exp.Table: "a table",
    exp.Window: "a window function",
    exp.AggFunc: "an aggregate",
    exp.Star: "*",
    **{kind: word or "a statement" for kind, word in FORBIDDEN_NODES.items()},
}


# --- checks ------------------------------------------------------------------------------------


def parse_row_predicate(text: str, field_names: Collection[str]) -> exp.Expression:
    """The predicate as a tree, or an `InputError` saying what in it is not allowed.

    Only the entry's own fields, literals, operators and functions that compute the same on DuckDB
    and Spark: no subqueries, tables, aggregates, windows or parameters, so a predicate can neither
    read other data nor behave differently on another engine.
    """

    def refuse(why: Text) -> InputError:
        return InputError(why, column="row_predicate")

    try:
        node = parse_single_query(f"SELECT 1 WHERE {text}")
    except PolicyViolation as error:
        raise InputError(
            sentence("the row predicate does not parse: {error}", error=str(error)), column="row_predicate"
        ) from None
    where = node.args.get("where") if isinstance(node, exp.Select) else None
    extra = [k for k, v in node.args.items() if v and k not in ("expressions", "where")]
    if where is None or extra:
        raise refuse(sentence("not allowed in a row predicate: anything but one condition"))
    predicate: exp.Expression = where.this
    for found in predicate.walk():
        for kind, word in _NOT_IN_PREDICATE.items():
            if isinstance(found, kind):
                raise refuse(sentence("not allowed in a row predicate: {what}", what=word))
        if isinstance(found, exp.Func) and not SparkFunctions.allows(found):
            raise refuse(
                sentence("not allowed in a row predicate: the function {name}", name=function_name(found))
            )
        if isinstance(found, exp.Identifier) and found.name.startswith(RESERVED_PREFIX):
            raise refuse(
                sentence("not allowed in a row predicate: the reserved name {name}", name=found.name)
            )
        if isinstance(found, exp.Column) and (found.table or found.name not in field_names):
            raise refuse(
                sentence(
                    "not allowed in a row predicate: {column}, which is not a field of the entry",
                    column=found.sql(),
                )
            )
    inner = predicate.unnest()
    if not isinstance(inner, _PREDICATES):
        raise refuse(sentence("not allowed in a row predicate: a value that is not a condition"))
    return predicate


def granted_fields(entry: CatalogEntry, wanted: Iterable[str]) -> list[str]:
    """The asked fields in the entry's order; an error names any the entry lacks."""
    names = [f.name for f in entry.fields]
    asked = [w.strip() for w in wanted if w.strip()]
    unknown = sorted(set(asked) - set(names))
    if unknown:
        raise InputError(
            sentence("entry {code} has no field {fields}", code=entry.code, fields=", ".join(unknown)),
            column="fields",
        )
    if not asked:
        raise InputError(sentence("a grant names at least one field"), column="fields")
    return [n for n in names if n in asked]


def granted_region(
    entry: CatalogEntry, prefix: str | None, field: str | None
) -> tuple[str | None, str | None]:
    """(division prefix, field) of a region filter, or (None, None); a half-given filter is an error."""
    if prefix is None and field is None:
        return None, None
    if not prefix or not field:
        raise InputError(sentence("a region filter needs both a division prefix and the field it applies to"))
    division = divisions().find(prefix)
    if division is None or prefix.strip() not in (division.prefix, division.code):
        raise InputError(
            sentence("{prefix!r} is not the prefix of a division (e.g. 3304 for 嘉兴市)", prefix=prefix),
            column="region",
        )
    if field not in {f.name for f in entry.fields}:
        raise InputError(
            sentence("entry {code} has no field {fields}", code=entry.code, fields=field),
            column="region_field",
        )
    return division.prefix, field


def normalise_deid(deid: Mapping[str, Any] | None, granted: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{field: {"function", "params"}}`` with every function and parameter checked."""
    result: dict[str, dict[str, Any]] = {}
    for field, choice in (deid or {}).items():
        spec: dict[str, Any] = {"function": choice, "params": {}} if isinstance(choice, str) else dict(choice)
        if set(spec) - {"function", "params"}:
            raise InputError(
                sentence("de-identification of {field}: only 'function' and 'params'", field=field),
                column="deid",
            )
        if field not in granted:
            raise InputError(
                sentence("de-identification names {field}, which the grant does not share", field=field),
                column="deid",
            )
        name, params = str(spec.get("function", "")), dict(spec.get("params") or {})
        if name == RAW:
            if params:
                raise InputError(sentence("{field}: raw takes no parameters", field=field), column="deid")
        elif name not in DEID_FUNCTIONS:
            known = ", ".join([*DEID_FUNCTIONS, RAW])
            raise InputError(
                sentence(
                    "{field}: unknown de-identification {name!r}; known: {known}",
                    field=field,
                    name=name,
                    known=known,
                ),
                column="deid",
            )
        elif "slot" in params:
            raise InputError(
                sentence("{field}: a pseudonym's slot is assigned per grant, not chosen", field=field),
                column="deid",
            )
        else:
            slot = {"slot": "check"} if any(p.name == "slot" for p in DEID_FUNCTIONS[name].parameters) else {}
            build_deid(name, exp.column(field), **params, **slot)
        result[field] = {"function": name, "params": params}
    return result


def check_period(
    valid_from: dt.datetime, valid_until: dt.datetime, now: dt.datetime, settings: Settings
) -> RuleViolation | None:
    """The rule a period breaks (returned, so the caller audits it), or None; nonsense raises."""
    if valid_until <= valid_from:
        raise InputError(sentence("a grant's period must end after it starts"), column="valid_until")
    if valid_until <= now or valid_from < now - BACKDATE_TOLERANCE:
        return RuleViolation(sentence("a grant's period cannot lie in the past"), "REQ-17")
    if valid_until - max(valid_from, now) > dt.timedelta(days=settings.max_grant_days):
        return RuleViolation(
            sentence("a grant lasts at most {days} days (max_grant_days)", days=settings.max_grant_days),
            "REQ-15",
        )
    return None
