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

The terms themselves (fields, region, row predicate, de-identification, period) are checked by
`pubdata.gateway.grant_terms`; this module adds what needs the database: the entry's state and
classes, the organisation, the application.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from pubdata import audit
from pubdata.audit import record_refusal as _record_refusal
from pubdata.catalog.classes import EntryState, ShareClass
from pubdata.catalog.service import find_organisation, get_entry
from pubdata.db.models import Application, Grant, Organisation, aware, utcnow
from pubdata.errors import InputError, NotFound, RuleViolation
from pubdata.gateway.grant_terms import (
    RAW,
    check_period,
    granted_fields,
    granted_region,
    normalise_deid,
    parse_row_predicate,
)
from pubdata.gateway.raw_assessments import deid_below_floor
from pubdata.messages import text
from pubdata.settings import Settings

__all__ = [
    "RAW",
    "get_grant",
    "grant_access",
    "grant_facts",
    "grant_state",
    "list_grants",
    "normalise_deid",
    "parse_row_predicate",
    "renew_grant",
    "revoke_grant",
]


def grant_state(grant: Grant, now: dt.datetime) -> str:
    """``revoked``, ``pending`` (not yet valid), ``expired`` or ``active`` at `now`."""
    if grant.revoked_at is not None:
        return "revoked"
    if aware(grant.valid_from) > now:
        return "pending"
    if aware(grant.valid_until) <= now:
        return "expired"
    return "active"


def _refuse(
    session: Session, actor: str, action: str, target: str, why: RuleViolation, **detail: Any
) -> None:
    _record_refusal(session, actor, action, target, reason=str(why), req=why.req, **detail)
    raise why


def _application(session: Session, code: str, org: Organisation, actor: str) -> Application:
    app = session.scalar(select(Application).where(Application.code == code.strip()))
    if app is None:
        raise NotFound(text("no application with the code {code!r}", code=code))
    if app.organisation_id != org.id:
        why = RuleViolation(
            text(
                "application {code} belongs to another organisation, not {org}", code=app.code, org=org.name
            ),
            "REQ-17",
        )
        _refuse(session, actor, "grant.create", app.code, why)
    if not app.active:
        _refuse(
            session,
            actor,
            "grant.create",
            app.code,
            RuleViolation(text("application {code} is deactivated", code=app.code)),
        )
    return app


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
        why = RuleViolation(
            text(
                "entry {code} is {state}; only published entries are granted",
                code=entry.code,
                state=entry.state.value,
            )
        )
        _refuse(session, actor, "grant.create", target, why)
    if entry.provider_id == org.id:
        raise InputError(
            text("{org} provides {code} and reads it without a grant", org=org.name, code=entry.code)
        )
    if entry.share_class is ShareClass.NOT_SHARED and not (coordination or "").strip():
        why = RuleViolation(
            text(
                "entry {code} is not shared (不予共享): only its provider reads it; "
                "sharing it needs coordination by the competent department",
                code=entry.code,
            ),
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
            RuleViolation(text("a grant states its purpose and legal basis"), "REQ-15"),
        )
    granted = granted_fields(entry, fields)
    prefix, region = granted_region(entry, region_prefix, region_field)
    predicate = None
    if row_predicate is not None and row_predicate.strip():
        predicate = parse_row_predicate(row_predicate, {f.name for f in entry.fields}).sql("duckdb")
    deid_choices = normalise_deid(deid, granted)
    below = deid_below_floor(session, entry, org.id, granted, deid_choices, now)
    if below is not None:
        _refuse(session, actor, "grant.create", target, below)
    start, end = aware(valid_from), aware(valid_until)
    late = check_period(start, end, now, settings)
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
        raise NotFound(text("no grant {grant}", grant=grant_id))
    return grant


def revoke_grant(
    session: Session, grant_id: int, *, actor: str, reason: str, now: dt.datetime | None = None
) -> Grant:
    """Stop a grant at once; revoking twice keeps the first time and reason."""
    if not reason.strip():
        raise InputError(text("say why the grant is revoked"), column="reason")
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
            RuleViolation(text("grant {grant} is revoked; make a new one", grant=grant.id)),
        )
    if grant.entry.state is not EntryState.PUBLISHED:
        why = RuleViolation(
            text(
                "entry {code} is {state}; its grants cannot be renewed",
                code=grant.entry.code,
                state=grant.entry.state.value,
            )
        )
        _refuse(session, actor, "grant.renew", target, why)
    late = check_period(aware(grant.valid_from), aware(valid_until), now, settings)
    if late is not None:
        _refuse(session, actor, "grant.renew", target, late)
    below = deid_below_floor(session, grant.entry, grant.organisation_id, grant.fields, grant.deid, now)
    if below is not None:
        _refuse(session, actor, "grant.renew", target, below)
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
