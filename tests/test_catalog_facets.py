"""Catalogue search at scale: full text (FTS5 trigram on SQLite), facet counts and keyset pages.

Random catalogues are written into one workspace inside a transaction that is rolled back after each
example; results and facet counts are compared with a plain Python reading of the same rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from pubdata.catalog.classes import EntryState, OpenClass, OrgType, ShareClass, UpdateCycle
from pubdata.catalog.search import EntryQuery, facet_counts, search_entries
from pubdata.catalog.service import register_organisation, retire_entry, update_entry
from pubdata.catalog.specs import OrganisationSpec
from pubdata.db.models import CatalogEntry, CatalogField, Organisation, Tenant
from pubdata.divisions import divisions
from pubdata.identifiers import make_uscc
from pubdata.settings import Settings
from pubdata.workspace import Workspace

NOW = dt.datetime(2026, 6, 30, 12, 0, tzinfo=dt.UTC)
REGIONS = ("330000000000", "330100000000", "330102000000", "330400000000", "330402000000", "330503000000")
CHARS = "社会保险参保学校卫生ab"
DOMAINS = ("", "教育", "卫生")
CITIES = [d for d in divisions() if d.level == "city" and not d.abolished]


@dataclass(frozen=True)
class Row:
    code: str
    name: str
    abstract: str
    provider: int
    domain: str
    region: str
    share: ShareClass | None
    opening: OpenClass | None
    levels: tuple[int, ...]
    titles: tuple[str, ...]
    state: EntryState
    cycle: UpdateCycle
    age_days: int

    @property
    def level(self) -> int | None:
        return max(self.levels, default=None)

    def overdue(self) -> bool:
        period = self.cycle.period
        published = NOW - dt.timedelta(days=self.age_days)
        return self.state is EntryState.PUBLISHED and period is not None and published < NOW - period


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, list[str]]]:
    workspace = Workspace.init(tmp_path_factory.mktemp("facets") / "home")
    usccs = [make_uscc("11", "330100", f"0000010{n}") for n in range(3)]
    with workspace.sessions() as s, s.begin():
        for n, uscc in enumerate(usccs):
            persons = {"head_name": "负责人", "security_officer_name": "安全员"}
            spec = OrganisationSpec(
                f"测试单位{n}", OrgType.STATE_ORGAN, uscc, "330100", f"单位{n}", **persons
            )
            register_organisation(s, spec, "admin")
    yield workspace, usccs
    workspace.engine.dispose()


words = st.text(alphabet=CHARS, min_size=0, max_size=6)
rows = st.builds(
    Row,
    code=st.just(""),
    name=words,
    abstract=words,
    provider=st.integers(0, 2),
    domain=st.sampled_from(DOMAINS),
    region=st.sampled_from(REGIONS),
    share=st.none() | st.sampled_from(ShareClass),
    opening=st.none() | st.sampled_from(OpenClass),
    levels=st.lists(st.integers(1, 4), max_size=3).map(tuple),
    titles=st.lists(words, min_size=3, max_size=3).map(tuple),
    state=st.sampled_from(EntryState),
    cycle=st.sampled_from(UpdateCycle),
    age_days=st.integers(0, 800),
)
queries = st.builds(
    EntryQuery,
    text=st.none() | st.text(alphabet=CHARS, min_size=1, max_size=4),
    provider=st.none() | st.integers(0, 2).map(str),
    domain=st.none() | st.sampled_from(DOMAINS[1:]),
    share_class=st.none() | st.sampled_from(ShareClass),
    open_class=st.none() | st.sampled_from(OpenClass),
    level=st.none() | st.integers(1, 4),
    region=st.none() | st.sampled_from(["330100000000", "330400000000", "330102000000"]),
    overdue=st.none() | st.booleans(),
    include_drafts=st.booleans(),
)


def insert(session: Session, catalogue: list[Row], usccs: list[str]) -> None:
    tenant = session.scalars(select(Tenant.id)).first()
    orgs = {o.uscc: o.id for o in session.scalars(select(Organisation))}
    for row in catalogue:
        published = NOW - dt.timedelta(days=row.age_days)
        fields = [
            CatalogField(name=f"f{k}", title=row.titles[k], level=level, position=k)
            for k, level in enumerate(row.levels)
        ]
        session.add(
            CatalogEntry(
                code=row.code, name=row.name, abstract=row.abstract, provider_id=orgs[usccs[row.provider]],
                tenant_id=tenant, domain=row.domain, region_code=row.region, share_class=row.share,
                open_class=row.opening, state=row.state, update_cycle=row.cycle, fields=fields,
                published_at=None if row.state is EntryState.DRAFT else published,
            )
        )  # fmt: skip
    session.flush()


def within(region: str, chosen: str) -> bool:
    division = divisions().get(chosen)
    above = {d.code for d in divisions().ancestors(chosen)[1:]}
    return region.startswith(division.prefix) or region in above


def matches(row: Row, q: EntryQuery, usccs: list[str]) -> bool:
    words = (q.text or "").strip().lower()
    haystack = [row.name, row.code, row.abstract, *row.titles[: len(row.levels)]]
    haystack += [f"f{k}" for k in range(len(row.levels))]
    return (
        (not words or any(words in h.lower() for h in haystack))
        and (q.provider is None or usccs[row.provider] == q.provider)
        and (q.domain is None or row.domain == q.domain)
        and (q.share_class is None or row.share is q.share_class)
        and (q.open_class is None or row.opening is q.open_class)
        and (q.level is None or row.level == q.level)
        and (q.region is None or within(row.region, q.region))
        and (q.include_drafts or row.state is not EntryState.DRAFT)
        and (q.overdue is None or row.overdue() is q.overdue)
    )


def oracle_facets(catalogue: list[Row], q: EntryQuery, usccs: list[str]) -> dict[str, dict[str, int]]:
    values: dict[str, list[object]] = {
        "provider": usccs, "domain": list(DOMAINS[1:]), "share_class": list(ShareClass),
        "open_class": list(OpenClass), "level": [1, 2, 3, 4], "region": [c.code for c in CITIES],
        "overdue": [True, False],
    }  # fmt: skip
    out: dict[str, dict[str, int]] = {}
    for facet, choices in values.items():
        counts = {}
        for value in choices:
            chosen = dataclasses.replace(q, **{facet: value})
            n = sum(matches(r, chosen, usccs) for r in catalogue)
            if n:
                key = str(value).lower() if isinstance(value, bool) else str(getattr(value, "value", value))
                counts[key] = n
        out[facet] = counts
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(catalogue=st.lists(rows, max_size=25), query=queries)
def test_results_and_facets_equal_a_python_reading(
    store: tuple[Workspace, list[str]], catalogue: list[Row], query: EntryQuery
) -> None:
    workspace, usccs = store
    catalogue = [dataclasses.replace(r, code=f"e{n:03d}") for n, r in enumerate(catalogue)]
    if query.provider is not None:
        query.provider = usccs[int(query.provider)]
    with workspace.sessions() as s:
        s.begin()
        try:
            insert(s, catalogue, usccs)
            query.limit = 1000
            page, total = search_entries(s, query, NOW)
            want = sorted(r.code for r in catalogue if matches(r, query, usccs))
            assert [e.code for e in page] == want and total == len(want)
            facets = facet_counts(s, query, NOW)
            expected = oracle_facets(catalogue, query, usccs)
            assert {f: facets.counts(f) for f in expected} == expected
        finally:
            s.rollback()


def test_keyset_pages_cover_the_result_once_in_order(store: tuple[Workspace, list[str]]) -> None:
    workspace, usccs = store
    base = Row("", "名称", "", 0, "", "330100000000", None, None, (1,), ("", "", ""),
               EntryState.PUBLISHED, UpdateCycle.IRREGULAR, 0)  # fmt: skip
    catalogue = [dataclasses.replace(base, code=f"k{n:03d}", name=f"目录资源{n}") for n in range(47)]
    with workspace.sessions() as s:
        s.begin()
        try:
            insert(s, catalogue, usccs)
            seen: list[str] = []
            after = None
            while True:
                page, total = search_entries(s, EntryQuery(text="目录资源", after=after, limit=10), NOW)
                assert total == 47
                if not page:
                    break
                seen += [e.code for e in page]
                after = page[-1].code
            assert seen == sorted(r.code for r in catalogue)
        finally:
            s.rollback()


def fts_rows(session: Session, phrase: str) -> list[int]:
    found = session.execute(
        text("SELECT rowid FROM catalog_search WHERE catalog_search MATCH :q"), {"q": phrase}
    )
    return sorted(found.scalars())


def test_chinese_substrings_and_the_index_follow_updates_and_retirement(
    store: tuple[Workspace, list[str]],
) -> None:
    workspace, usccs = store
    settings_ = Settings()
    with workspace.sessions() as s:
        s.begin()
        try:
            base = Row("k001", "城镇职工社会保险参保登记", "各险种参保人员", 0, "", "330100000000",
                       ShareClass.UNCONDITIONAL, OpenClass.RESTRICTED, (1,), ("参保险种", "", ""),
                       EntryState.PUBLISHED, UpdateCycle.IRREGULAR, 0)  # fmt: skip
            insert(s, [base], usccs)
            entry = s.scalars(select(CatalogEntry).where(CatalogEntry.code == "k001")).one()
            entry.category_class, entry.domain = "基础", "社会保障"

            def found(words: str) -> list[str]:
                return [e.code for e in search_entries(s, EntryQuery(text=words), NOW)[0]]

            assert found("社会保险参保") == ["k001"] and found("险参保") == ["k001"]
            assert found("保险") == ["k001"], "two characters fall back to LIKE"
            assert found("参保险种") == ["k001"], "a field title"
            assert found("K00") == ["k001"], "the code, ASCII case folded"
            assert found("登记各险") == [], "no match across the name and the abstract"
            assert fts_rows(s, '"社会保险"') == [entry.id]
            update_entry(s, "k001", {"name": "企业职工养老保险待遇", "abstract": "待遇发放"}, "admin",
                         settings_)  # fmt: skip
            assert found("社会保险") == [] and found("养老保险") == ["k001"]
            assert fts_rows(s, '"社会保险"') == [] and fts_rows(s, '"养老保险"') == [entry.id]
            entry.fields[0].title = "离退休类别"
            s.flush()
            assert found("参保险种") == [] and found("离退休") == ["k001"]
            retire_entry(s, "k001", "admin")
            assert found("养老保险") == ["k001"], "a retired entry stays findable in listings"
            assert search_entries(s, EntryQuery(text="养老保险", state=EntryState.PUBLISHED), NOW)[1] == 0
            s.delete(entry)
            s.flush()
            assert fts_rows(s, '"养老保险"') == []
        finally:
            s.rollback()
