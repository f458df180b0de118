"""What the platform already holds of a new collection's data elements (REQ-9, 一数一源 REQ-8).

Before a department designs a new form or dataset it should learn which of its columns are already
collected, by whom, and which holder is the authoritative source, so that it asks for the data
instead of asking citizens again. Columns are matched by element code first (the only exact
match), else by name, title or alias, and last by the kind of personal information they hold
(``sfzh`` and 公民身份号码 are the same element under different names).

Example (on an empty platform nothing is held yet):
    >>> overlap_for_columns(session, ["sfzh", "姓名"])  # doctest: +SKIP
    [OverlapHit(column='sfzh', matched_by='pii_kind', entry_code='population', ...)]
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager

from pubdata.catalog.classes import EntryState, PiiKind
from pubdata.catalog.rules import AuthoritativeSource
from pubdata.catalog.specs import FieldSpec
from pubdata.catalog.suggest import suggest_field
from pubdata.db.models import CatalogEntry, CatalogField, Organisation
from pubdata.settings import Settings

MatchedBy = Literal["element_code", "name", "title", "alias", "pii_kind"]


@dataclass(frozen=True)
class OverlapHit:
    """One published field that already holds a column of the new collection."""

    column: str
    matched_by: MatchedBy
    entry_code: str
    entry_name: str
    field_name: str
    field_title: str
    element_code: str | None
    provider: str
    provider_uscc: str
    #: This field is the authoritative source of its element.
    authoritative: bool
    #: Where the element's authoritative source is (this field or another), if it has one.
    authoritative_entry: str | None
    authoritative_provider: str | None


def authoritative_sources(
    session: Session, element_codes: Iterable[str], except_entry: str | None = None
) -> dict[str, AuthoritativeSource]:
    """The current authoritative source of each element code; retired entries no longer count."""
    codes = sorted(set(element_codes))
    if not codes:
        return {}
    query = (
        select(CatalogField.element_code, CatalogEntry.code, Organisation.name)
        .join(CatalogField.entry)
        .join(CatalogEntry.provider)
        .where(
            CatalogField.is_authoritative_source,
            CatalogField.element_code.in_(codes),
            CatalogEntry.state != EntryState.RETIRED,
        )
        .order_by(CatalogEntry.code)
    )
    if except_entry is not None:
        query = query.where(CatalogEntry.code != except_entry)
    return {str(element): AuthoritativeSource(code, name) for element, code, name in session.execute(query)}


def _key(text: str) -> str:
    return "".join(text.lower().split()).replace("-", "_")


def _published_fields(session: Session) -> list[CatalogField]:
    """Published fields with their entry and provider, in one query (no N+1)."""
    query = (
        select(CatalogField)
        .join(CatalogField.entry)
        .join(CatalogEntry.provider)
        .where(CatalogEntry.state == EntryState.PUBLISHED)
        .options(contains_eager(CatalogField.entry).contains_eager(CatalogEntry.provider))
        .order_by(CatalogEntry.code, CatalogField.position)
    )
    return list(session.scalars(query).unique())


def _matches(column: FieldSpec, field: CatalogField, kind: PiiKind) -> MatchedBy | None:
    if column.element_code and field.element_code:
        return "element_code" if field.element_code == column.element_code else None
    names = {_key(n) for n in (column.name, column.title, *column.aliases) if n}
    if _key(field.name) in names:
        return "name"
    if field.title and _key(field.title) in names:
        return "title"
    if names & {_key(a) for a in field.aliases}:
        return "alias"
    if kind is not PiiKind.NONE and field.pii_kind is kind:
        return "pii_kind"
    return None


_RANK = {"element_code": 0, "name": 1, "title": 1, "alias": 1, "pii_kind": 2}


def overlap_for_columns(
    session: Session, columns: Sequence[str | FieldSpec], settings: Settings | None = None
) -> list[OverlapHit]:
    """For each column, the published fields that hold it, best matches first, authoritative first.

    A column matched by name, title or alias is not also reported by kind of personal information:
    the weaker match would only repeat the stronger one less precisely.
    """
    settings = settings or Settings()
    specs = [FieldSpec(name=c, title=c) if isinstance(c, str) else c for c in columns]
    held = _published_fields(session)
    sources = authoritative_sources(session, (f.element_code for f in held if f.element_code))
    hits: list[OverlapHit] = []
    for spec in specs:
        kind = spec.pii_kind or suggest_field(spec.name, spec.title, [], settings).pii_kind
        found = [(how, f) for f in held if (how := _matches(spec, f, kind)) is not None]
        if found:
            best = min(_RANK[how] for how, _ in found)
            found = [(how, f) for how, f in found if _RANK[how] == best]
        found.sort(key=lambda hit: (not hit[1].is_authoritative_source, hit[1].entry.code))
        for how, f in found:
            source = sources.get(f.element_code or "")
            hits.append(
                OverlapHit(
                    column=spec.name,
                    matched_by=how,
                    entry_code=f.entry.code,
                    entry_name=f.entry.name,
                    field_name=f.name,
                    field_title=f.title,
                    element_code=f.element_code,
                    provider=f.entry.provider.name,
                    provider_uscc=f.entry.provider.uscc,
                    authoritative=f.is_authoritative_source,
                    authoritative_entry=source.entry_code if source else None,
                    authoritative_provider=source.provider if source else None,
                )
            )
    return hits


def overlap_for_file(session: Session, path: Path, settings: Settings | None = None) -> list[OverlapHit]:
    """The overlap of a file's header: what a form or spreadsheet would collect again."""
    # Imported when called: ingestion sits above the catalogue and must not be loaded with it.
    readers = importlib.import_module("pubdata.ingest.readers")
    columns: list[str] = readers.open_source(path).info.columns
    return overlap_for_columns(session, columns, settings)
