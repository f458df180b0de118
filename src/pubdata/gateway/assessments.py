"""Security assessments of combined entries (REQ-26): the record, the level rule and the cover check.

Joining entries that each hold person-level data can produce something more sensitive than any of
them — a name from one, a birth date from a second and a division from a third single a person out
although no entry does. Such a query runs only under an approved, unexpired assessment whose entry
codes include every entry it combines. The assessment states the result level: at least the highest
input level ("就高从严", REQ-31), raised by one when the combination joins quasi-identifiers that no
entry holds on its own (`assess_level`). An assessment may conclude lower than that — it is the
re-assessment REQ-31 allows — but then it must say why.

Example:
    >>> from types import SimpleNamespace as Row
    >>> def entry(code, *fields):
    ...     return Row(code=code, fields=[Row(name=k, level=lv, pii_kind=PiiKind(k), validator=v)
    ...                                   for k, lv, v in fields])
    >>> people = entry("people", ("name", 2, None), ("none", 1, "division_code"))
    >>> births = entry("births", ("birth_date", 2, None))
    >>> assess_level([people]), assess_level([people, births])
    (2, 3)
    >>> holds_person_data(births), holds_person_data(entry("firms", ("uscc", 1, None)))
    (True, False)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pubdata import audit
from pubdata.catalog.classes import PiiKind
from pubdata.catalog.service import find_organisation
from pubdata.db.models import CatalogEntry, Organisation, SecurityAssessment, aware, utcnow
from pubdata.errors import InputError, NotFound
from pubdata.messages import text

#: PII kinds that make an entry hold data about persons (a credit code names a company).
PERSON_KINDS = frozenset(PiiKind) - {PiiKind.NONE, PiiKind.USCC}
#: From this level up a field counts as person-level whatever its kind: L3 较敏感 data may harm someone.
PERSON_LEVEL = 3
#: Quasi-identifier classes: values that, combined, single a person out (GB/T 37964 准标识符).
QUASI_IDENTIFIERS: dict[PiiKind, str] = {
    PiiKind.NAME: "name",
    PiiKind.BIRTH_DATE: "birth date",
    PiiKind.ID_NUMBER: "identity number",
    PiiKind.MOBILE: "mobile",
    PiiKind.ADDRESS: "address",
    PiiKind.PRECISE_LOCATION: "location",
}
#: A field validated as a division code places a person too.
DIVISION_VALIDATOR = "division_code"
#: How many quasi-identifier classes a combination must hold to raise its level: three is the
#: classic birth date + sex + postcode case that singles out most of a population.
QUASI_IDENTIFIER_THRESHOLD = 3
APPROVED = "approved"


class FieldLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def level(self) -> int: ...
    @property
    def pii_kind(self) -> PiiKind: ...
    @property
    def validator(self) -> str | None: ...


class EntryLike(Protocol):
    @property
    def code(self) -> str: ...
    @property
    def fields(self) -> Sequence[FieldLike]: ...


def is_person_field(field: FieldLike) -> bool:
    return field.pii_kind in PERSON_KINDS or field.level >= PERSON_LEVEL


def holds_person_data(entry: EntryLike, fields: Iterable[str] | None = None) -> bool:
    """Whether `entry` (or only its `fields`, when given) holds person-level data."""
    wanted = set(fields) if fields is not None else None
    return any(is_person_field(f) for f in entry.fields if wanted is None or f.name in wanted)


def quasi_identifiers(entry: EntryLike) -> frozenset[str]:
    found = {QUASI_IDENTIFIERS[f.pii_kind] for f in entry.fields if f.pii_kind in QUASI_IDENTIFIERS}
    if any(f.validator == DIVISION_VALIDATOR for f in entry.fields):
        found.add("division")
    return frozenset(found)


def assess_level(entries: Sequence[EntryLike]) -> int:
    """The result level of combining `entries`: the highest field level, plus one (at most L4)
    when together they hold `QUASI_IDENTIFIER_THRESHOLD` or more quasi-identifier classes and that
    combination is more than any one entry holds by itself."""
    highest = max((f.level for e in entries for f in e.fields), default=1)
    held = [quasi_identifiers(e) for e in entries]
    combined = frozenset().union(*held)
    new_combination = all(len(combined) > len(h) for h in held)
    if len(entries) > 1 and new_combination and len(combined) >= QUASI_IDENTIFIER_THRESHOLD:
        return min(highest + 1, 4)
    return highest


def _entries(session: Session, codes: Iterable[str]) -> list[CatalogEntry]:
    wanted = sorted({c.strip() for c in codes if c.strip()})
    found = {e.code: e for e in session.scalars(select(CatalogEntry).where(CatalogEntry.code.in_(wanted)))}
    missing = [c for c in wanted if c not in found]
    if missing:
        raise NotFound(text("no catalogue entry {codes}", codes=", ".join(missing)))
    return [found[c] for c in wanted]


def record_assessment(
    session: Session,
    entry_codes: Iterable[str],
    result_level: int | None,
    conclusion: str,
    approved_by: str,
    valid_until: dt.datetime,
    organisation: str | None = None,
    *,
    actor: str | None = None,
    now: dt.datetime | None = None,
) -> SecurityAssessment:
    """Store an approved assessment; `result_level` None takes the computed one (`assess_level`)."""
    now = now or utcnow()
    entries = _entries(session, entry_codes)
    if len(entries) < 2:
        raise InputError(
            text("an assessment covers a combination: name at least two entries"), column="entry"
        )
    computed = assess_level(entries)
    level = computed if result_level is None else result_level
    if not 1 <= level <= 4:
        raise InputError(text("result level {level} is not one of L1–L4", level=level), column="result_level")
    if level < computed and not conclusion.strip():
        raise InputError(
            text(
                "the combination computes to L{computed}; concluding L{level} needs a written conclusion",
                computed=computed,
                level=level,
            ),
            column="conclusion",
        )
    if not approved_by.strip():
        raise InputError(text("an assessment names who approved it"), column="approved_by")
    if aware(valid_until) <= now:
        raise InputError(
            text("valid until {day:%Y-%m-%d} is already past", day=valid_until), column="valid_until"
        )
    org = _organisation(session, organisation)
    row = SecurityAssessment(
        entry_codes=[e.code for e in entries],
        organisation_id=org.id if org else None,
        result_level=level,
        status=APPROVED,
        conclusion=conclusion.strip(),
        approved_by=approved_by.strip(),
        approved_at=now,
        valid_until=valid_until,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor or approved_by,
        "assessment.record",
        f"assessment:{row.id}",
        entries=row.entry_codes,
        result_level=level,
        computed_level=computed,
        organisation=org.name if org else None,
        valid_until=valid_until,
    )
    return row


def _organisation(session: Session, ref: str | None) -> Organisation | None:
    return find_organisation(session, ref) if ref else None


def list_assessments(session: Session) -> list[SecurityAssessment]:
    return list(session.scalars(select(SecurityAssessment).order_by(SecurityAssessment.id)))


def find_covering(
    session: Session, entry_codes: Iterable[str], now: dt.datetime, organisation_id: int | None = None
) -> SecurityAssessment | None:
    """The newest approved, unexpired assessment whose codes include all of `entry_codes`.

    An assessment made for one organisation covers that organisation only; one made without an
    organisation covers every caller.
    """
    wanted = {c.lower() for c in entry_codes}
    query = select(SecurityAssessment).where(
        SecurityAssessment.status == APPROVED,
        SecurityAssessment.valid_until > now,
        func.coalesce(SecurityAssessment.organisation_id, organisation_id or -1) == (organisation_id or -1),
    )
    for row in session.scalars(query.order_by(SecurityAssessment.id.desc())):
        if wanted <= {c.lower() for c in row.entry_codes} and aware(row.valid_until) > now:
            return row
    return None
