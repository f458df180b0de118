"""Catalogue writes and reads. Every rule of the regulation is enforced here, where rows are written.

(Interface fixed; implementation pending.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from pubdata.catalog.classes import EntryState, OpenClass, ShareClass
from pubdata.catalog.specs import EntrySpec, OrganisationSpec
from pubdata.db.models import CatalogEntry, Organisation
from pubdata.settings import Settings


def register_organisation(session: Session, spec: OrganisationSpec, actor: str) -> Organisation:
    """Create an organisation (USCC and division code validated), audited."""
    raise NotImplementedError


def find_organisation(session: Session, ref: str) -> Organisation:
    """By name, short name or USCC; NotFound otherwise."""
    raise NotImplementedError


def create_entry(session: Session, spec: EntrySpec, actor: str, settings: Settings) -> CatalogEntry:
    """Register a draft entry; levels / PII kinds left empty in the spec are suggested."""
    raise NotImplementedError


def publish_entry(session: Session, code: str, actor: str, settings: Settings) -> CatalogEntry:
    raise NotImplementedError


def retire_entry(session: Session, code: str, actor: str) -> CatalogEntry:
    raise NotImplementedError


def get_entry(session: Session, code: str) -> CatalogEntry:
    raise NotImplementedError


@dataclass
class EntryQuery:
    text: str | None = None
    provider: str | None = None
    share_class: ShareClass | None = None
    open_class: OpenClass | None = None
    level: int | None = None
    region: str | None = None
    state: EntryState | None = None
    overdue: bool | None = None
    offset: int = 0
    limit: int = 50


def search_entries(
    session: Session, query: EntryQuery, now: dt.datetime | None = None
) -> tuple[list[CatalogEntry], int]:
    """The page of entries matching `query` and the total count."""
    raise NotImplementedError


def is_overdue(entry: CatalogEntry, now: dt.datetime, grace_days: int = 0) -> bool:
    """REQ-11: the entry's data is older than its update cycle."""
    raise NotImplementedError
