"""Catalogue search that stays fast at 100 000 entries: filters, full text, keyset pages and facets.

Text on SQLite goes through the FTS5 table ``catalog_search`` (migration 0007, ``trigram``
tokenizer, one row per entry: name, code, abstract and the fields' titles and names, kept current
by triggers on ``catalog_entries`` and ``catalog_fields``). A trigram index answers substrings of
three characters or more, Chinese included; shorter queries fall back to ``LIKE``. Both ways fold
ASCII case only, so they give the same answers.

PostgreSQL needs nothing beyond the models: text is ``ILIKE '%…%'`` over the same columns. For a
large catalogue there, ``CREATE EXTENSION pg_trgm`` and GIN ``gin_trgm_ops`` indexes on
``catalog_entries.name``, ``code``, ``abstract`` and ``catalog_fields.title``, ``name`` make those
scans index look-ups; they are optional and not part of the migrations.

Facets are CKAN's: each value of a facet is counted under every filter except that facet's own,
so the number next to a value is what choosing it would give.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, column, exists, func, or_, select, table
from sqlalchemy.orm import Session, selectinload

from pubdata.catalog.classes import EntryState, Level, OpenClass, ShareClass, UpdateCycle
from pubdata.db.models import CatalogEntry, CatalogField, Organisation, utcnow
from pubdata.divisions import divisions
from pubdata.errors import InputError
from pubdata.identifiers import normalise_uscc
from pubdata.messages import text

#: The FTS5 table of migration 0007; its hidden column of the same name takes ``MATCH``.
FTS = table("catalog_search", column("rowid"), column("catalog_search"))
#: Shortest text the trigram index can answer.
MIN_FTS_CHARS = 3
#: Joins field titles and names in the index, so that no phrase matches across two of them.
FIELD_SEPARATOR = "\x1f"
FACETS = ("provider", "domain", "region", "share_class", "open_class", "level", "overdue")


@dataclass
class EntryQuery:
    text: str | None = None
    provider: str | None = None
    domain: str | None = None
    share_class: ShareClass | None = None
    open_class: OpenClass | None = None
    level: int | None = None
    region: str | None = None
    state: EntryState | None = None
    overdue: bool | None = None
    offset: int = 0
    limit: int = 50
    #: Keyset paging: only entries whose code sorts after this one (the last code of the page before).
    after: str | None = None
    #: Drafts are the provider's work in progress; public listings leave them out.
    include_drafts: bool = True


@dataclass(frozen=True)
class FacetValue:
    value: str
    label: str
    count: int


@dataclass
class Facets:
    """Values of each facet with their counts, largest first; values counted zero are left out."""

    values: dict[str, list[FacetValue]] = field(default_factory=dict)

    def counts(self, facet: str) -> dict[str, int]:
        return {v.value: v.count for v in self.values.get(facet, [])}


def as_utc(moment: dt.datetime) -> dt.datetime:
    """Stored times are UTC; SQLite gives them back naive."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def overdue_clause(now: dt.datetime, grace_days: int) -> ColumnElement[bool]:
    """One comparison per cycle, with the deadline computed here: portable to every database."""
    reference = func.coalesce(CatalogEntry.data_updated_at, CatalogEntry.published_at)
    grace = dt.timedelta(days=grace_days)
    late = [
        and_(CatalogEntry.update_cycle == cycle, reference < as_utc(now) - period - grace)
        for cycle in UpdateCycle
        if (period := cycle.period) is not None
    ]
    return and_(CatalogEntry.state == EntryState.PUBLISHED, reference.is_not(None), or_(*late))


def _region_clause(region: str) -> ColumnElement[bool]:
    """Entries inside the region, and entries of the regions above it, which cover it too."""
    division = divisions().find(region)
    if division is None:
        prefix = region.strip()
        if not prefix.isdigit():
            raise InputError(text("unknown division code {code!r}", code=region), column="region")
        return CatalogEntry.region_code.startswith(prefix, autoescape=True)
    above = [d.code for d in divisions().ancestors(division.code)[1:]]
    return or_(
        CatalogEntry.region_code.startswith(division.prefix, autoescape=True),
        CatalogEntry.region_code.in_(above),
    )


def _like_text(words: str) -> ColumnElement[bool]:
    in_fields = exists().where(
        CatalogField.entry_id == CatalogEntry.id,
        or_(
            CatalogField.title.icontains(words, autoescape=True),
            CatalogField.name.icontains(words, autoescape=True),
        ),
    )
    columns = (CatalogEntry.name, CatalogEntry.code, CatalogEntry.abstract)
    return or_(*(col.icontains(words, autoescape=True) for col in columns), in_fields)


def _text_clause(session: Session, words: str) -> ColumnElement[bool]:
    if session.get_bind().dialect.name != "sqlite" or len(words) < MIN_FTS_CHARS:
        return _like_text(words)
    phrase = '"' + words.replace('"', '""') + '"'
    return CatalogEntry.id.in_(select(FTS.c.rowid).where(FTS.c.catalog_search.op("MATCH")(phrase)))


def _highest_level() -> ColumnElement[int]:
    return (
        select(func.max(CatalogField.level)).where(CatalogField.entry_id == CatalogEntry.id).scalar_subquery()
    )


def _conditions(
    session: Session, query: EntryQuery, now: dt.datetime, grace_days: int
) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if query.text and query.text.strip():
        found.append(_text_clause(session, query.text.strip()))
    if query.provider:
        ref = query.provider.strip()
        found.append(
            CatalogEntry.provider_id.in_(
                select(Organisation.id).where(
                    or_(
                        Organisation.name.icontains(ref, autoescape=True),
                        Organisation.short_name == ref,
                        Organisation.uscc == normalise_uscc(ref),
                    )
                )
            )
        )
    if query.domain:
        found.append(CatalogEntry.domain == query.domain.strip())
    if query.share_class is not None:
        found.append(CatalogEntry.share_class == query.share_class)
    if query.open_class is not None:
        found.append(CatalogEntry.open_class == query.open_class)
    if query.level is not None:
        found.append(_highest_level() == query.level)
    if query.region:
        found.append(_region_clause(query.region))
    if query.state is not None:
        found.append(CatalogEntry.state == query.state)
    if not query.include_drafts:
        found.append(CatalogEntry.state != EntryState.DRAFT)
    if query.overdue is not None:
        late = overdue_clause(now, grace_days)
        found.append(late if query.overdue else ~late)
    return found


def search_entries(
    session: Session, query: EntryQuery, now: dt.datetime | None = None, *, grace_days: int = 0
) -> tuple[list[CatalogEntry], int]:
    """The page of entries matching `query` (after `query.after`, else from `query.offset`) and the
    total count of matches, ordered by code."""
    if query.offset < 0 or not 1 <= query.limit <= 1000:
        raise InputError(text("offset must be ≥ 0 and limit between 1 and 1000"))
    conditions = _conditions(session, query, now or utcnow(), grace_days)
    total = session.scalar(select(func.count()).select_from(CatalogEntry).where(*conditions)) or 0
    page_query = select(CatalogEntry).where(*conditions)
    if query.after is not None:
        page_query = page_query.where(CatalogEntry.code > query.after)
    page = session.scalars(
        page_query.order_by(CatalogEntry.code)
        .offset(query.offset)
        .limit(query.limit)
        .options(selectinload(CatalogEntry.fields), selectinload(CatalogEntry.provider))
    ).all()
    return list(page), total


# --- facets ----------------------------------------------------------------------------------------


def facet_counts(
    session: Session, query: EntryQuery, now: dt.datetime | None = None, *, grace_days: int = 0
) -> Facets:
    """Each facet's values with the number of entries matching `query` with that value chosen."""
    now = now or utcnow()

    def others(facet: str) -> list[ColumnElement[bool]]:
        cleared: dict[str, Any] = {facet: None}
        return _conditions(session, dataclasses.replace(query, **cleared), now, grace_days)

    def grouped(key: Any, facet: str) -> list[tuple[Any, int]]:
        rows: list[Any] = list(session.execute(_grouped(key, others(facet))).all())
        return [(value, int(n)) for value, n in rows if value is not None and value != ""]

    out: dict[str, list[FacetValue]] = {}
    names = dict(
        session.execute(
            select(Organisation.uscc, func.coalesce(Organisation.short_name, Organisation.name))
        ).all()
    )
    providers = grouped(
        select(Organisation.uscc).where(Organisation.id == CatalogEntry.provider_id).scalar_subquery(),
        "provider",
    )
    out["provider"] = [FacetValue(str(u), names.get(str(u)) or str(u), n) for u, n in providers]
    out["domain"] = [FacetValue(str(d), str(d), n) for d, n in grouped(CatalogEntry.domain, "domain")]
    out["region"] = _cities(grouped(CatalogEntry.region_code, "region"))
    out["share_class"] = [
        FacetValue(ShareClass(v).value, ShareClass(v).label, n)
        for v, n in grouped(CatalogEntry.share_class, "share_class")
    ]
    out["open_class"] = [
        FacetValue(OpenClass(v).value, OpenClass(v).label, n)
        for v, n in grouped(CatalogEntry.open_class, "open_class")
    ]
    out["level"] = [
        FacetValue(str(int(v)), Level(int(v)).label, n) for v, n in grouped(_highest_level(), "level")
    ]
    late = overdue_clause(now, grace_days)
    flags = grouped(case((late, "true"), else_="false"), "overdue")
    out["overdue"] = [FacetValue(str(v), str(v), n) for v, n in flags]
    return Facets({k: sorted(v, key=lambda f: (-f.count, f.value)) for k, v in out.items()})


def _grouped(key: Any, conditions: list[ColumnElement[bool]]) -> Select[tuple[Any, int]]:
    keyed = select(key.label("k")).select_from(CatalogEntry).where(*conditions).subquery()
    return select(keyed.c.k, func.count()).group_by(keyed.c.k)


def _cities(by_region: list[tuple[Any, int]]) -> list[FacetValue]:
    """Counts per city: the city's own entries and those of the regions above it (the province),
    which the region filter includes too."""
    table_ = divisions()
    counts: dict[str, int] = {}
    above: dict[str, int] = {}
    for code, n in by_region:
        division = table_.find(str(code))
        level = division.level if division else None
        if level == "province":
            above[division.code] = above.get(division.code, 0) + n  # type: ignore[union-attr]
            continue
        city = next((d for d in table_.ancestors(str(code)) if d.level == "city"), None) if division else None
        if city is not None:
            counts[city.code] = counts.get(city.code, 0) + n
    cities = [d for d in table_ if d.level == "city" and not d.abolished]
    out = []
    for city in cities:
        n = counts.get(city.code, 0) + sum(above.get(a.code, 0) for a in table_.ancestors(city.code)[1:])
        if n:
            out.append(FacetValue(city.code, city.name, n))
    return out
