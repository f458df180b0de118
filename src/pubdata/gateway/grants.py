"""Grants (REQ-17): one organisation's application may use one entry — these fields, these rows,
de-identified so, for this purpose, from then until then.

A grant is checked completely when it is made, because a bad one would only show when a query
fails or, worse, when it shows too much: the entry must be published and shareable to that
organisation, every field must exist, the region must be a real division prefix over a field of the
entry, the row predicate must parse and name only the entry's fields and portable functions, every
de-identification function must exist with valid parameters, the application must be the
organisation's and active, and the period must lie ahead and within ``max_grant_days``. Refusals by
a rule are audited; every change (create, revoke, renew) is audited and renewing raises
`Grant.policy_version`, so that each answer names the exact policy it ran under.

De-identification per field is ``{"function": <name in DEID_FUNCTIONS>, "params": {...}}`` (or just
the name); ``"raw"`` shares the field as stored — the provider's explicit choice, recorded in the
audit trail. A pseudonym's ``slot`` and key are assigned per grant when the policy is compiled.

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

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from sqlglot import exp

from pubdata import audit
from pubdata.audit import record_refusal as _record_refusal
from pubdata.catalog.classes import EntryState, ShareClass
from pubdata.catalog.service import find_organisation, get_entry
from pubdata.db.models import Application, CatalogEntry, Grant, Organisation, aware, utcnow
from pubdata.divisions import divisions
from pubdata.errors import InputError, NotFound, RuleViolation
from pubdata.gateway.deid import DEID_FUNCTIONS, build_deid
from pubdata.gateway.policy_types import RESERVED_PREFIX, PolicyViolation
from pubdata.gateway.rewrite.check_functions import SparkFunctions, function_name
from pubdata.gateway.rewrite.forbid_side_effects import FORBIDDEN_NODES
from pubdata.gateway.rewrite.parse_single_query import parse_single_query
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


def grant_state(grant: Grant, now: dt.datetime) -> str:
    """``revoked``, ``pending`` (not yet valid), ``expired`` or ``active`` at `now`."""
    if grant.revoked_at is not None:
        return "revoked"
    if aware(grant.valid_from) > now:
        return "pending"
    if aware(grant.valid_until) <= now:
        return "expired"
    return "active"


# --- checks ------------------------------------------------------------------------------------


def parse_row_predicate(text: str, field_names: Collection[str]) -> exp.Expression:
    """The predicate as a tree, or an `InputError` saying what in it is not allowed.

    Only the entry's own fields, literals, operators and functions that compute the same on DuckDB
    and Spark: no subqueries, tables, aggregates, windows or parameters, so a predicate can neither
    read other data nor behave differently on another engine.
    """

    def refuse(why: str) -> InputError:
        return InputError(f"not allowed in a row predicate: {why}", column="row_predicate")

    try:
        node = parse_single_query(f"SELECT 1 WHERE {text}")
    except PolicyViolation as error:
        raise InputError(f"the row predicate does not parse: {error}", column="row_predicate") from None
    where = node.args.get("where") if isinstance(node, exp.Select) else None
    extra = [k for k, v in node.args.items() if v and k not in ("expressions", "where")]
    if where is None or extra:
        raise refuse("anything but one condition")
    predicate: exp.Expression = where.this
    for found in predicate.walk():
        for kind, word in _NOT_IN_PREDICATE.items():
            if isinstance(found, kind):
                raise refuse(word)
        if isinstance(found, exp.Func) and not SparkFunctions.allows(found):
            raise refuse(f"the function {function_name(found)}")
        if isinstance(found, exp.Identifier) and found.name.startswith(RESERVED_PREFIX):
            raise refuse(f"the reserved name {found.name}")
        if isinstance(found, exp.Column) and (found.table or found.name not in field_names):
            raise refuse(f"{found.sql()}, which is not a field of the entry")
    inner = predicate.unnest()
    if not isinstance(inner, _PREDICATES):
        raise refuse("a value that is not a condition")
    return predicate


def _fields(entry: CatalogEntry, wanted: Iterable[str]) -> list[str]:
    names = [f.name for f in entry.fields]
    asked = [w.strip() for w in wanted if w.strip()]
    unknown = sorted(set(asked) - set(names))
    if unknown:
        raise InputError(f"entry {entry.code} has no field {', '.join(unknown)}", column="fields")
    if not asked:
        raise InputError("a grant names at least one field", column="fields")
    return [n for n in names if n in asked]


def _region(entry: CatalogEntry, prefix: str | None, field: str | None) -> tuple[str | None, str | None]:
    if prefix is None and field is None:
        return None, None
    if not prefix or not field:
        raise InputError("a region filter needs both a division prefix and the field it applies to")
    division = divisions().find(prefix)
    if division is None or prefix.strip() not in (division.prefix, division.code):
        raise InputError(
            f"{prefix!r} is not the prefix of a division (e.g. 3304 for 嘉兴市)", column="region"
        )
    if field not in {f.name for f in entry.fields}:
        raise InputError(f"entry {entry.code} has no field {field}", column="region_field")
    return division.prefix, field


def normalise_deid(deid: Mapping[str, Any] | None, granted: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{field: {"function", "params"}}`` with every function and parameter checked."""
    result: dict[str, dict[str, Any]] = {}
    for field, choice in (deid or {}).items():
        spec: dict[str, Any] = {"function": choice, "params": {}} if isinstance(choice, str) else dict(choice)
        if set(spec) - {"function", "params"}:
            raise InputError(f"de-identification of {field}: only 'function' and 'params'", column="deid")
        if field not in granted:
            raise InputError(
                f"de-identification names {field}, which the grant does not share", column="deid"
            )
        name, params = str(spec.get("function", "")), dict(spec.get("params") or {})
        if name == RAW:
            if params:
                raise InputError(f"{field}: raw takes no parameters", column="deid")
        elif name not in DEID_FUNCTIONS:
            known = ", ".join([*DEID_FUNCTIONS, RAW])
            raise InputError(f"{field}: unknown de-identification {name!r}; known: {known}", column="deid")
        elif "slot" in params:
            raise InputError(f"{field}: a pseudonym's slot is assigned per grant, not chosen", column="deid")
        else:
            slot = {"slot": "check"} if any(p.name == "slot" for p in DEID_FUNCTIONS[name].parameters) else {}
            build_deid(name, exp.column(field), **params, **slot)
        result[field] = {"function": name, "params": params}
    return result


def _refuse(
    session: Session, actor: str, action: str, target: str, why: RuleViolation, **detail: Any
) -> None:
    _record_refusal(session, actor, action, target, reason=str(why), req=why.req, **detail)
    raise why


def _application(session: Session, code: str, org: Organisation, actor: str) -> Application:
    app = session.scalar(select(Application).where(Application.code == code.strip()))
    if app is None:
        raise NotFound(f"no application with the code {code!r}")
    if app.organisation_id != org.id:
        why = RuleViolation(
            f"application {app.code} belongs to another organisation, not {org.name}", "REQ-17"
        )
        _refuse(session, actor, "grant.create", app.code, why)
    if not app.active:
        _refuse(
            session, actor, "grant.create", app.code, RuleViolation(f"application {app.code} is deactivated")
        )
    return app


def _check_period(
    valid_from: dt.datetime, valid_until: dt.datetime, now: dt.datetime, settings: Settings
) -> RuleViolation | None:
    if valid_until <= valid_from:
        raise InputError("a grant's period must end after it starts", column="valid_until")
    if valid_until <= now or valid_from < now - BACKDATE_TOLERANCE:
        return RuleViolation("a grant's period cannot lie in the past", "REQ-17")
    if valid_until - max(valid_from, now) > dt.timedelta(days=settings.max_grant_days):
        return RuleViolation(
            f"a grant lasts at most {settings.max_grant_days} days (max_grant_days)", "REQ-15"
        )
    return None


# --- lifecycle ---------------------------------------------------------------------------------


def grant_access(
    session: Session,
    *,
    organisation: str,
    application: str,
    entry_code: str,
    fields: Iterable[str],
    region_prefix: str | None = None,
    region_field: str | None = None,
    row_predicate: str | None = None,
    deid: Mapping[str, Any] | None = None,
    purpose: str,
    legal_basis: str,
    valid_from: dt.datetime,
    valid_until: dt.datetime,
    actor: str,
    settings: Settings,
    now: dt.datetime | None = None,
    coordination: str | None = None,
) -> Grant:
    """Let `organisation`'s `application` use `entry_code` as described; checked, then audited.

    A not-shared entry is granted only with `coordination`: the competent department's decision on a
    dispute (REQ-16), which the caller has checked and the grant keeps as its reference.
    """
    now = now or utcnow()
    entry = get_entry(session, entry_code)
    org = find_organisation(session, organisation)
    target = f"{entry.code}→{org.name}"
    if entry.state is not EntryState.PUBLISHED:
        why = RuleViolation(f"entry {entry.code} is {entry.state.value}; only published entries are granted")
        _refuse(session, actor, "grant.create", target, why)
    if entry.provider_id == org.id:
        raise InputError(f"{org.name} provides {entry.code} and reads it without a grant")
    if entry.share_class is ShareClass.NOT_SHARED and not (coordination or "").strip():
        why = RuleViolation(
            f"entry {entry.code} is not shared (不予共享): only its provider reads it; "
            "sharing it needs coordination by the competent department",
            "REQ-14",
        )
        _refuse(session, actor, "grant.create", target, why)
    app = _application(session, application, org, actor)
    if not purpose.strip() or not legal_basis.strip():
        _refuse(
            session,
            actor,
            "grant.create",
            target,
            RuleViolation("a grant states its purpose and legal basis", "REQ-15"),
        )
    granted = _fields(entry, fields)
    prefix, region = _region(entry, region_prefix, region_field)
    predicate = None
    if row_predicate is not None and row_predicate.strip():
        predicate = parse_row_predicate(row_predicate, {f.name for f in entry.fields}).sql("duckdb")
    deid_choices = normalise_deid(deid, granted)
    start, end = aware(valid_from), aware(valid_until)
    late = _check_period(start, end, now, settings)
    if late is not None:
        _refuse(session, actor, "grant.create", target, late)
    grant = Grant(
        organisation=org,
        application=app,
        entry=entry,
        fields=granted,
        region_prefix=prefix,
        region_field=region,
        row_predicate=predicate,
        deid=deid_choices,
        purpose=purpose.strip(),
        legal_basis=legal_basis.strip(),
        valid_from=start,
        valid_until=end,
        policy_version=1,
        coordination=(coordination or "").strip() or None,
        created_by=actor,
        created_at=now,
    )
    session.add(grant)
    session.flush()
    audit.record(session, actor, "grant.create", f"grant:{grant.id}", **grant_facts(grant))
    return grant


def grant_facts(grant: Grant) -> dict[str, Any]:
    """What a grant allows, as the audit trail, the CLI and the API show it."""
    return {
        "id": grant.id,
        "organisation": grant.organisation.name,
        "application": grant.application.code,
        "entry": grant.entry.code,
        "fields": list(grant.fields),
        "region_prefix": grant.region_prefix,
        "region_field": grant.region_field,
        "row_predicate": grant.row_predicate,
        "deid": dict(grant.deid),
        "purpose": grant.purpose,
        "legal_basis": grant.legal_basis,
        "valid_from": aware(grant.valid_from),
        "valid_until": aware(grant.valid_until),
        "revoked_at": aware(grant.revoked_at) if grant.revoked_at else None,
        "revoke_reason": grant.revoke_reason,
        "policy_version": grant.policy_version,
        "coordination": grant.coordination,
    }


def get_grant(session: Session, grant_id: int) -> Grant:
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise NotFound(f"no grant {grant_id}")
    return grant


def revoke_grant(
    session: Session, grant_id: int, *, actor: str, reason: str, now: dt.datetime | None = None
) -> Grant:
    """Stop a grant at once; revoking twice keeps the first time and reason."""
    if not reason.strip():
        raise InputError("say why the grant is revoked", column="reason")
    grant = get_grant(session, grant_id)
    if grant.revoked_at is None:
        grant.revoked_at, grant.revoked_by, grant.revoke_reason = now or utcnow(), actor, reason.strip()
        session.flush()
        audit.record(session, actor, "grant.revoke", f"grant:{grant.id}", reason=grant.revoke_reason)
    return grant


def renew_grant(
    session: Session,
    grant_id: int,
    *,
    valid_until: dt.datetime,
    actor: str,
    settings: Settings,
    now: dt.datetime | None = None,
) -> Grant:
    """Move a grant's end; the policy version goes up so later answers name the renewed grant."""
    now = now or utcnow()
    grant = get_grant(session, grant_id)
    target = f"grant:{grant.id}"
    if grant.revoked_at is not None:
        _refuse(
            session,
            actor,
            "grant.renew",
            target,
            RuleViolation(f"grant {grant.id} is revoked; make a new one"),
        )
    if grant.entry.state is not EntryState.PUBLISHED:
        why = RuleViolation(
            f"entry {grant.entry.code} is {grant.entry.state.value}; its grants cannot be renewed"
        )
        _refuse(session, actor, "grant.renew", target, why)
    late = _check_period(aware(grant.valid_from), aware(valid_until), now, settings)
    if late is not None:
        _refuse(session, actor, "grant.renew", target, late)
    before = aware(grant.valid_until)
    grant.valid_until = aware(valid_until)
    grant.policy_version += 1
    session.flush()
    audit.record(
        session,
        actor,
        "grant.renew",
        target,
        valid_until_before=before,
        valid_until=grant.valid_until,
        policy_version=grant.policy_version,
    )
    return grant


def list_grants(
    session: Session,
    *,
    organisation: str | None = None,
    entry_code: str | None = None,
    application: str | None = None,
    active_at: dt.datetime | None = None,
) -> list[Grant]:
    """Grants, oldest first, optionally of one organisation / entry / application or active at a time."""
    query = select(Grant).options(
        selectinload(Grant.organisation), selectinload(Grant.application), selectinload(Grant.entry)
    )
    if organisation is not None:
        query = query.where(Grant.organisation_id == find_organisation(session, organisation).id)
    if entry_code is not None:
        query = query.where(Grant.entry_id == get_entry(session, entry_code).id)
    if application is not None:
        query = query.where(Grant.application.has(Application.code == application.strip()))
    found = list(session.scalars(query.order_by(Grant.id)))
    if active_at is not None:
        found = [g for g in found if grant_state(g, active_at) == "active"]
    return found
