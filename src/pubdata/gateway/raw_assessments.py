"""Security assessments that clear fields to be shared as stored, and the floor check that reads them.

The de-identification floor (`deid_floor`, REQ-27) is the approver's limit, not the organisation's:
when sharing an identity number as stored is truly needed, a security assessment says so on record —
which entry, which fields, for which organisation (or any), until when, approved by whom and why — and
only then may a grant name those fields raw. Every path that makes or renews a grant asks
`deid_below_floor`, so the approval form, the API, coordinated approvals and the command line all stop
at the same floor; the gateway asks it again on every query (`access.decide`), so a grant made before
the floor, or under an assessment that has since expired, stops serving what the floor hides.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pubdata import audit
from pubdata.catalog.service import find_organisation, get_entry
from pubdata.db.models import CatalogEntry, SecurityAssessment, aware, utcnow
from pubdata.errors import InputError
from pubdata.gateway.assessments import APPROVED, assess_level
from pubdata.gateway.deid_floor import DeidFloorViolation, check_floor
from pubdata.messages import text


def record_raw_assessment(
    session: Session,
    entry_code: str,
    fields: Iterable[str],
    reason: str,
    approved_by: str,
    valid_until: dt.datetime,
    organisation: str | None = None,
    *,
    actor: str | None = None,
    now: dt.datetime | None = None,
) -> SecurityAssessment:
    """Store an approved assessment that lets grants of `entry_code` share `fields` as stored."""
    now = now or utcnow()
    entry = get_entry(session, entry_code)
    names = {f.name for f in entry.fields}
    wanted = sorted({f.strip() for f in fields if f.strip()})
    unknown = [f for f in wanted if f not in names]
    if not wanted or unknown:
        raise InputError(
            text("entry {code} has no field {fields}", code=entry.code, fields=", ".join(unknown) or "—"),
            column="raw_fields",
        )
    if not reason.strip():
        raise InputError(text("say why the fields may be shared as stored"), column="conclusion")
    if not approved_by.strip():
        raise InputError(text("an assessment names who approved it"), column="approved_by")
    if aware(valid_until) <= now:
        raise InputError(
            text("valid until {day:%Y-%m-%d} is already past", day=valid_until), column="valid_until"
        )
    org = find_organisation(session, organisation) if organisation else None
    row = SecurityAssessment(
        entry_codes=[entry.code],
        organisation_id=org.id if org else None,
        result_level=assess_level([entry]),
        status=APPROVED,
        conclusion=reason.strip(),
        approved_by=approved_by.strip(),
        approved_at=now,
        valid_until=valid_until,
        raw_fields=wanted,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor or approved_by,
        "assessment.record",
        f"assessment:{row.id}",
        entries=row.entry_codes,
        raw_fields=wanted,
        reason=row.conclusion,
        organisation=org.name if org else None,
        valid_until=valid_until,
    )
    return row


def assessed_raw_fields(
    session: Session, entry_code: str, organisation_id: int | None, now: dt.datetime
) -> frozenset[str]:
    """Fields of the entry that an approved, unexpired assessment for the organisation names raw."""
    query = select(SecurityAssessment).where(
        SecurityAssessment.status == APPROVED,
        SecurityAssessment.valid_until > now,
        func.coalesce(SecurityAssessment.organisation_id, organisation_id or -1) == (organisation_id or -1),
    )
    found: set[str] = set()
    for row in session.scalars(query):
        if [c.lower() for c in row.entry_codes] == [entry_code.lower()] and aware(row.valid_until) > now:
            found.update(str(f) for f in row.raw_fields or ())
    return frozenset(found)


class TermsLike(Protocol):
    """What a decision proposes: the fields it shares and their de-identification."""

    @property
    def fields(self) -> list[str]: ...
    @property
    def deid(self) -> dict[str, dict[str, Any]]: ...


def require_floor(
    session: Session, entry: CatalogEntry, organisation_id: int | None, terms: TermsLike, now: dt.datetime
) -> None:
    """Refuse proposed terms below the floor when they are proposed, not only when a grant is made
    from them: a coordinated approval waits for a countersignature that could otherwise not succeed."""
    below = deid_below_floor(session, entry, organisation_id, terms.fields, terms.deid, now)
    if below is not None:
        raise below


def deid_below_floor(
    session: Session,
    entry: CatalogEntry,
    organisation_id: int | None,
    granted: Iterable[str],
    deid: Mapping[str, Mapping[str, Any]],
    now: dt.datetime,
) -> DeidFloorViolation | None:
    """The refusal for the first granted field de-identified below its floor (returned so that the
    caller audits it), or None."""
    wanted = set(granted)
    fields = [f for f in entry.fields if f.name in wanted]
    if check_floor(fields, deid) is None:  # the usual case asks the database nothing
        return None
    return check_floor(fields, deid, assessed_raw_fields(session, entry.code, organisation_id, now))
