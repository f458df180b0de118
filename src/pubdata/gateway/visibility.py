"""What a caller may query, as one SQL condition: the catalogue page "what may I see" at any size.

The access rules (own data; unconditional sharing unless national core or important data; an
active grant through an active application; others' not-shared data only through a grant the
competent department coordinated) are the same as
`access.decide` applies per query. Here they are a ``WHERE`` clause, so the database returns one
page of visible entries in code order by walking the unique code index (keyset paging with
``after``), and the cost of a page does not grow with the size of the catalogue or the number of
grants in the platform. The grants of the page's entries are loaded for that page only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, false, or_, select
from sqlalchemy.orm import Session, selectinload

from pubdata.catalog.classes import EntryState, NationalLevel, ShareClass
from pubdata.db.models import Application, CatalogEntry, CatalogField, Grant
from pubdata.gateway.access_rules import AccessRule
from pubdata.gateway.roles import Principal, Role

#: Roles whose organisation may query through the gateway.
QUERY_ROLES = (Role.CONSUMER, Role.PROVIDER)
#: National grades (REQ-31) that are read only through a grant, whatever the sharing class.
SENSITIVE_NATIONAL = (NationalLevel.CORE, NationalLevel.IMPORTANT)


@dataclass(frozen=True)
class VisibleEntry:
    """An entry a principal may query, and on what footing (own data, unconditional, or grants)."""

    entry: CatalogEntry
    rule: AccessRule
    grants: tuple[Grant, ...] = ()


def _utc(now: dt.datetime) -> dt.datetime:
    # SQLite keeps UTC wall-clock text: a bound value in another zone would compare wrongly.
    return now.astimezone(dt.UTC) if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)


def active_grants(organisation_id: int, now: dt.datetime) -> ColumnElement[bool]:
    """Grants of the organisation in force at `now`, through an application that is still active."""
    moment = _utc(now)
    return and_(
        Grant.organisation_id == organisation_id,
        Grant.revoked_at.is_(None),
        Grant.valid_from <= moment,
        Grant.valid_until > moment,
        Grant.application.has(Application.active.is_(True)),
    )


def _sensitive_national() -> ColumnElement[bool]:
    return or_(
        CatalogEntry.national_level.in_(SENSITIVE_NATIONAL),
        exists().where(
            CatalogField.entry_id == CatalogEntry.id, CatalogField.national_level.in_(SENSITIVE_NATIONAL)
        ),
    )


def visible_condition(principal: Principal, now: dt.datetime) -> ColumnElement[bool]:
    """SQL condition on `CatalogEntry`: the caller's organisation may query the entry at `now`."""
    org = principal.organisation
    if org is None or not principal.has_role(*QUERY_ROLES):
        return false()
    granted = exists().where(Grant.entry_id == CatalogEntry.id, active_grants(org.id, now))
    coordinated = exists().where(
        Grant.entry_id == CatalogEntry.id, active_grants(org.id, now), Grant.coordination.is_not(None)
    )
    return and_(
        CatalogEntry.state == EntryState.PUBLISHED,
        CatalogEntry.classified.is_(False),
        or_(
            CatalogEntry.provider_id == org.id,
            and_(CatalogEntry.share_class == ShareClass.NOT_SHARED, coordinated),
            and_(
                CatalogEntry.share_class != ShareClass.NOT_SHARED,
                or_(
                    granted,
                    and_(CatalogEntry.share_class == ShareClass.UNCONDITIONAL, ~_sensitive_national()),
                ),
            ),
        ),
    )


def visible_page(
    session: Session,
    principal: Principal,
    now: dt.datetime,
    *,
    after: str | None = None,
    limit: int | None = 50,
) -> list[VisibleEntry]:
    """Visible entries in code order, the first `limit` after the code `after` (all when None)."""
    org = principal.organisation
    if org is None:
        return []
    query = (
        select(CatalogEntry)
        .where(visible_condition(principal, now))
        .options(selectinload(CatalogEntry.fields))
        .order_by(CatalogEntry.code)
    )
    if after is not None:
        query = query.where(CatalogEntry.code > after)
    if limit is not None:
        query = query.limit(limit)
    entries = list(session.scalars(query))
    held: dict[int, list[Grant]] = {}
    if entries:
        grants = session.scalars(
            select(Grant)
            .where(Grant.entry_id.in_([e.id for e in entries]), active_grants(org.id, now))
            .order_by(Grant.id)
        )
        for grant in grants:
            held.setdefault(grant.entry_id, []).append(grant)
    return [_footing(entry, org.id, held.get(entry.id, [])) for entry in entries]


def _footing(entry: CatalogEntry, organisation_id: int, grants: list[Grant]) -> VisibleEntry:
    if entry.provider_id == organisation_id:
        return VisibleEntry(entry, AccessRule.OWN_DATA)
    if entry.share_class is ShareClass.NOT_SHARED:
        grants = [g for g in grants if g.coordination is not None]
    if grants:
        return VisibleEntry(entry, AccessRule.GRANT, tuple(grants))
    return VisibleEntry(entry, AccessRule.UNCONDITIONAL)


def visible_entry(session: Session, principal: Principal, now: dt.datetime, code: str) -> VisibleEntry | None:
    """The caller's footing on one entry, or None when it may not query it."""
    org = principal.organisation
    if org is None:
        return None
    entry = session.scalars(
        select(CatalogEntry).where(CatalogEntry.code == code, visible_condition(principal, now))
    ).first()
    if entry is None:
        return None
    grants = list(
        session.scalars(
            select(Grant).where(Grant.entry_id == entry.id, active_grants(org.id, now)).order_by(Grant.id)
        )
    )
    return _footing(entry, org.id, grants)
