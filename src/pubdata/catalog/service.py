"""Catalogue writes and reads. Every rule of the regulation is enforced here, where rows are written.

Each write first builds the `EntrySpec` it is about to store, runs the pure checks of
`pubdata.catalog.rules` on it and only then touches the database, so a refused write leaves nothing
behind. Refusals are audited in a transaction of their own, because the caller's transaction is
about to roll back and REQ-1/REQ-40 want the refusal on record anyway.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, NoReturn

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from pubdata import audit
from pubdata.catalog import rules
from pubdata.catalog.classes import EntryState, PiiKind
from pubdata.catalog.overlap import authoritative_sources
from pubdata.catalog.search import EntryQuery as EntryQuery  # search lives in catalog.search;
from pubdata.catalog.search import Facets as Facets  # these names stay importable from here
from pubdata.catalog.search import as_utc
from pubdata.catalog.search import facet_counts as facet_counts
from pubdata.catalog.search import search_entries as search_entries
from pubdata.catalog.specs import EntrySpec, FieldSpec, OrganisationSpec, entry_from_dict
from pubdata.catalog.suggest import resolve_levels
from pubdata.db.models import CatalogEntry, CatalogField, Organisation, utcnow
from pubdata.divisions import divisions
from pubdata.errors import InputError, NotFound, PubdataError, RuleViolation
from pubdata.identifiers import normalise_uscc, uscc_problem
from pubdata.messages import text
from pubdata.settings import Settings
from pubdata.workflow import responsibility
from pubdata.workspace import tenant_for

#: Entry attributes that a spec and a row share one to one.
_ENTRY_ATTRS = tuple(
    f.name for f in dataclasses.fields(EntrySpec) if f.name not in ("code", "provider", "fields")
)
#: Field attributes that a spec and a row share one to one.
_FIELD_ATTRS = tuple(f.name for f in dataclasses.fields(FieldSpec) if f.name != "authoritative")


# --- audit of refusals -------------------------------------------------------------------------


def _refuse(session: Session, actor: str, action: str, target: str, reason: RuleViolation) -> NoReturn:
    audit.record_refusal(session, actor, action, target, reason=str(reason), req=reason.req)
    raise reason


# --- organisations -----------------------------------------------------------------------------


def register_organisation(session: Session, spec: OrganisationSpec, actor: str) -> Organisation:
    """Create an organisation (USCC and division code validated), audited."""
    uscc = normalise_uscc(spec.uscc)
    problem = uscc_problem(uscc)
    if problem:
        raise InputError(
            text("{uscc!r} is not a unified social credit code ({problem})", uscc=spec.uscc, problem=problem),
            column="uscc",
        )
    division = divisions().find(spec.division_code)
    if division is None:
        raise InputError(
            text("unknown division code {code!r}", code=spec.division_code), column="division_code"
        )
    clash = session.scalar(
        select(Organisation.name).where(or_(Organisation.name == spec.name, Organisation.uscc == uscc))
    )
    if clash is not None:
        raise PubdataError(text("organisation {name} already has this name or USCC", name=clash))
    org = Organisation(
        name=spec.name,
        short_name=spec.short_name,
        org_type=spec.org_type,
        uscc=uscc,
        division_code=division.code,
        tenant=tenant_for(session, division.code),
        is_competent_department=spec.is_competent_department,
        head_name=spec.head_name,
        head_contact=spec.head_contact,
        security_officer_name=spec.security_officer_name,
        security_officer_contact=spec.security_officer_contact,
    )
    session.add(org)
    session.flush()
    responsibility.start_history(session, org, actor, utcnow())
    audit.record(session, actor, "organisation.register", uscc, name=spec.name, division=division.code)
    return org


def find_organisation(session: Session, ref: str) -> Organisation:
    """By name, short name or USCC; NotFound otherwise."""
    ref = ref.strip()
    found = session.scalars(
        select(Organisation).where(
            or_(
                Organisation.name == ref,
                Organisation.short_name == ref,
                Organisation.uscc == normalise_uscc(ref),
            )
        )
    ).all()
    if not found:
        raise NotFound(text("no organisation named {ref!r} (name, short name or USCC)", ref=ref))
    if len(found) > 1:
        raise PubdataError(
            text(
                "{ref!r} names {count} organisations; use the full name or the USCC",
                ref=ref,
                count=len(found),
            )
        )
    return found[0]


def set_responsible_persons(
    session: Session,
    org_ref: str,
    head_name: str | None,
    head_contact: str | None,
    officer_name: str | None,
    officer_contact: str | None,
    actor: str,
) -> Organisation:
    """REQ-25: name the head and the security officer who answer for a provider's data.

    Each duty that changes ends its holder's history row and starts the new one, audited as
    ``org.responsible`` (see `pubdata.workflow.responsibility`).
    """
    org = find_organisation(session, org_ref)
    now = utcnow()
    for duty, name, contact in (
        (responsibility.Duty.HEAD, head_name, head_contact),
        (responsibility.Duty.SECURITY_OFFICER, officer_name, officer_contact),
    ):
        responsibility.change_holder(session, org, duty, name, contact, actor, now=now)
    return org


# --- entries: specs, suggestions, rules ----------------------------------------------------------


def spec_of(entry: CatalogEntry) -> EntrySpec:
    """The spec that would recreate `entry`: the common ground of create, update and publish."""
    fields = [
        FieldSpec(
            **{name: getattr(f, name) for name in _FIELD_ATTRS}, authoritative=f.is_authoritative_source
        )
        for f in entry.fields
    ]
    values = {name: getattr(entry, name) for name in _ENTRY_ATTRS}
    values["related_resources"] = list(entry.related_resources)
    values["key_fields"] = list(entry.key_fields)
    return EntrySpec(code=entry.code, provider=entry.provider.uscc, fields=fields, **values)


def _check(
    session: Session, spec: EntrySpec, provider: Organisation, settings: Settings, published: bool
) -> None:
    rules.apply_rules(spec, rules.DRAFT_RULES)
    claimed = (f.element_code for f in spec.fields if f.authoritative and f.element_code)
    rules.check_single_authoritative_source(spec, authoritative_sources(session, claimed, spec.code))
    if published:
        rules.apply_rules(spec, rules.PUBLISH_RULES)
        if settings.require_responsible_persons:
            rules.check_responsible_persons(provider.name, provider.head_name, provider.security_officer_name)


def _region(code: str) -> str:
    division = divisions().find(code)
    if division is None:
        raise InputError(text("unknown division code {code!r}", code=code), column="region_code")
    return division.code


def _write(entry: CatalogEntry, spec: EntrySpec, provider: Organisation) -> None:
    """Copy a checked spec onto a row; fields are matched by name so their ids survive."""
    for name in _ENTRY_ATTRS:
        setattr(entry, name, getattr(spec, name))
    entry.region_code = _region(spec.region_code)
    entry.related_resources = list(spec.related_resources)
    entry.key_fields = list(spec.key_fields)
    entry.provider, entry.tenant_id = provider, provider.tenant_id
    existing = {f.name: f for f in entry.fields}
    rows = []
    for position, f in enumerate(spec.fields):
        row = existing.get(f.name) or CatalogField(name=f.name)
        for name in _FIELD_ATTRS:
            setattr(row, name, getattr(f, name))
        row.position, row.level, row.pii_kind = position, f.level or 1, f.pii_kind or PiiKind.NONE
        row.aliases, row.is_authoritative_source = list(f.aliases), f.authoritative
        rows.append(row)
    entry.fields = rows


def create_entry(session: Session, spec: EntrySpec, actor: str, settings: Settings) -> CatalogEntry:
    """Register a draft entry; levels / PII kinds left empty in the spec are suggested."""
    try:
        rules.check_not_classified(spec)
    except RuleViolation as refusal:
        _refuse(session, actor, "catalog.create", spec.code, refusal)
    provider = find_organisation(session, spec.provider)
    resolved, reasons = resolve_levels(spec, settings)
    _region(spec.region_code)
    if session.scalar(select(CatalogEntry.id).where(CatalogEntry.code == spec.code)) is not None:
        raise PubdataError(text("entry {code} already exists", code=spec.code))
    try:
        _check(session, resolved, provider, settings, published=False)
    except RuleViolation as refusal:
        _refuse(session, actor, "catalog.create", spec.code, refusal)
    entry = CatalogEntry(code=spec.code, state=EntryState.DRAFT)
    _write(entry, resolved, provider)
    session.add(entry)
    session.flush()
    audit.record(
        session, actor, "catalog.create", spec.code, name=spec.name, provider=provider.uscc, suggested=reasons
    )
    return entry


def update_entry(
    session: Session, code: str, changes: dict[str, Any], actor: str, settings: Settings
) -> CatalogEntry:
    """Change a draft or published entry; the result must pass the same rules as a new one."""
    entry = get_entry(session, code)
    if changes.get("code", code) != code:
        raise InputError(text("an entry's code cannot change; register a new entry"), column="code")
    try:
        rules.check_changeable(code, entry.state)
    except RuleViolation as refusal:
        _refuse(session, actor, "catalog.update", code, refusal)
    merged = dataclasses.asdict(spec_of(entry))
    merged.update({k: v for k, v in changes.items() if k != "fields"})
    if "fields" in changes:
        merged["fields"] = [
            dataclasses.asdict(f) if isinstance(f, FieldSpec) else f for f in changes["fields"]
        ]
    spec = entry_from_dict(merged, f"<changes to {code}>")
    provider = find_organisation(session, spec.provider)
    resolved, reasons = resolve_levels(spec, settings)
    _region(spec.region_code)
    try:
        _check(session, resolved, provider, settings, published=entry.state is EntryState.PUBLISHED)
    except RuleViolation as refusal:
        _refuse(session, actor, "catalog.update", code, refusal)
    _write(entry, resolved, provider)
    session.flush()
    audit.record(session, actor, "catalog.update", code, changed=sorted(changes), suggested=reasons)
    return entry


def _move(
    session: Session, code: str, target: EntryState, actor: str, action: str, settings: Settings | None
) -> CatalogEntry:
    entry = get_entry(session, code)
    try:
        rules.check_transition(code, entry.state, target)
        if settings is not None:
            _check(session, spec_of(entry), entry.provider, settings, published=True)
    except RuleViolation as refusal:
        _refuse(session, actor, action, code, refusal)
    entry.state = target
    if target is EntryState.PUBLISHED:
        entry.published_at = utcnow()
    else:
        entry.retired_at = utcnow()
    session.flush()
    audit.record(session, actor, action, code, state=target.value)
    return entry


def publish_entry(session: Session, code: str, actor: str, settings: Settings) -> CatalogEntry:
    """Draft → published, once classified, graded and described (REQ-3, 10, 25)."""
    return _move(session, code, EntryState.PUBLISHED, actor, "catalog.publish", settings)


def retire_entry(session: Session, code: str, actor: str) -> CatalogEntry:
    """Published → retired; final."""
    return _move(session, code, EntryState.RETIRED, actor, "catalog.retire", None)


def get_entry(session: Session, code: str) -> CatalogEntry:
    entry = session.scalar(
        select(CatalogEntry)
        .where(CatalogEntry.code == code)
        .options(selectinload(CatalogEntry.fields), selectinload(CatalogEntry.provider))
    )
    if entry is None:
        raise NotFound(text("no catalogue entry {code!r}", code=code))
    return entry


# --- search (kept importable here for existing callers) ----------------------------------------


def is_overdue(entry: CatalogEntry, now: dt.datetime, grace_days: int = 0) -> bool:
    """REQ-11: the entry's data is older than its update cycle."""
    period = entry.update_cycle.period
    reference = entry.data_updated_at or entry.published_at
    if entry.state is not EntryState.PUBLISHED or period is None or reference is None:
        return False
    return as_utc(reference) < as_utc(now) - period - dt.timedelta(days=grace_days)
