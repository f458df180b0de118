"""Catalogue reads for people and scripts: the one place the API and the CLI build their answers.

Both surfaces call these functions so that a listing, a detail or a quality report looks the same
whether it is fetched over HTTP or printed by ``pubdata … --json``. Nothing here writes.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from pubdata.api.quality_view import sees_quality_details, shown_report
from pubdata.api.schemas import EntryDetail, EntryPage, EntrySummary, OrganisationOut, QualityOut, VersionOut
from pubdata.catalog import service
from pubdata.db.models import CatalogEntry, DatasetVersion, Organisation
from pubdata.errors import NotFound
from pubdata.gateway.roles import Principal
from pubdata.store.delta import DatasetStore
from pubdata.workspace import Workspace


def entry_overdue(workspace: Workspace, entry: CatalogEntry, now: dt.datetime | None = None) -> bool:
    """REQ-11, with the grace period of the provider's tenant."""
    settings = workspace.settings.for_tenant(entry.provider.division_code)
    return service.is_overdue(entry, now or workspace.clock(), settings.overdue_grace_days)


def search(
    workspace: Workspace, session: Session, query: service.EntryQuery, now: dt.datetime | None = None
) -> EntryPage:
    now = now or workspace.clock()
    page, total = service.search_entries(session, query, now)
    items = [EntrySummary.from_row(e, entry_overdue(workspace, e, now)) for e in page]
    return EntryPage(items=items, total=total, offset=query.offset, limit=query.limit)


def versions(workspace: Workspace, session: Session, entry: CatalogEntry) -> list[DatasetVersion]:
    """The indexed versions, oldest first; an entry never loaded has none (and no table yet)."""
    store = DatasetStore(workspace.data_dir, workspace.sessions)
    return sorted(store.versions(session, entry), key=lambda v: v.version)


def entry_detail(workspace: Workspace, session: Session, code: str) -> EntryDetail:
    entry = service.get_entry(session, code)
    return EntryDetail.from_entry(entry, entry_overdue(workspace, entry), versions(workspace, session, entry))


def entry_versions(workspace: Workspace, session: Session, code: str) -> list[VersionOut]:
    entry = service.get_entry(session, code)
    return [VersionOut.from_row(v) for v in versions(workspace, session, entry)]


def version_quality(
    workspace: Workspace,
    session: Session,
    code: str,
    version: int | None = None,
    *,
    reader: Principal | None = None,
    operator: bool = False,
) -> QualityOut:
    """The quality report of `version`, else of the latest version; with its row examples for the
    workspace's `operator` (the CLI) and for a `reader` who is staff of the entry."""
    entry = service.get_entry(session, code)
    details = operator or sees_quality_details(reader, entry)
    known = versions(workspace, session, entry)
    if not known:
        raise NotFound(f"entry {code} has no data yet: load a file with `pubdata ingest {code} FILE`")
    chosen = known[-1] if version is None else next((v for v in known if v.version == version), None)
    if chosen is None:
        listed = ", ".join(str(v.version) for v in known)
        raise NotFound(f"entry {code} has no version {version} (versions: {listed})")
    report = shown_report(chosen.quality or {}, details=details)
    return QualityOut(entry=code, version=VersionOut.from_row(chosen), report=report, details=details)


def organisations(session: Session) -> list[OrganisationOut]:
    rows = session.scalars(select(Organisation).order_by(Organisation.division_code, Organisation.name))
    return [OrganisationOut.from_row(o) for o in rows]


def organisation(session: Session, ref: str) -> OrganisationOut:
    return OrganisationOut.from_row(service.find_organisation(session, ref))
