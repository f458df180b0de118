"""Catalogue search (filters, paging, region semantics) and the overdue flag (REQ-11).

A few hundred entries are built once from a table of known facts (`Fact`); every filter is checked
against what those facts say, on SQLite and, when a server is at hand, on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from pubdata.catalog.classes import EntryState, OpenClass, OrgType, ShareClass, UpdateCycle
from pubdata.catalog.service import (
    EntryQuery,
    create_entry,
    get_entry,
    is_overdue,
    publish_entry,
    register_organisation,
    retire_entry,
    search_entries,
)
from pubdata.catalog.specs import EntrySpec, FieldSpec, OrganisationSpec
from pubdata.db.models import CatalogEntry
from pubdata.errors import InputError
from pubdata.identifiers import make_uscc
from pubdata.settings import Settings
from pubdata.workspace import Workspace

SETTINGS = Settings()
NOW = dt.datetime(2026, 6, 30, 12, 0, tzinfo=dt.UTC)
REGIONS = ("330000000000", "330100000000", "330102000000", "330102001000", "330106000000", "330400000000",
           "330402000000")  # fmt: skip
PROVIDERS = (("浙江省大数据发展管理局", "省数据局", "330000", "00000001"),
             ("杭州市市场监督管理局", "市市场监管局", "330100", "00000002"),
             ("上城区教育局", "上城教育", "330102", "00000003"))  # fmt: skip
CYCLES = tuple(UpdateCycle)
SHARES = tuple(ShareClass)


@dataclass(frozen=True)
class Fact:
    """What entry number `i` is, decided by arithmetic so that tests can recompute it."""

    i: int

    @property
    def code(self) -> str:
        return f"res_{self.i:04d}"

    @property
    def name(self) -> str:
        return (
            "100%_完成率统计"
            if self.i == 7
            else f"数据资源{self.i}号" + ("（学校）" if self.i % 11 == 0 else "")
        )

    @property
    def provider(self) -> int:
        return self.i % 3

    @property
    def region(self) -> str:
        return REGIONS[self.i % len(REGIONS)]

    @property
    def level(self) -> int:
        return self.i % 4 + 1

    @property
    def share(self) -> ShareClass:
        return SHARES[self.i % 3]

    @property
    def opening(self) -> OpenClass:
        return {1: OpenClass.UNCONDITIONAL, 4: OpenClass.PROHIBITED}.get(self.level, OpenClass.RESTRICTED)

    @property
    def cycle(self) -> UpdateCycle:
        return CYCLES[self.i % len(CYCLES)]

    @property
    def state(self) -> EntryState:
        if self.i % 5 == 0:
            return EntryState.DRAFT
        return EntryState.RETIRED if self.i % 13 == 0 else EntryState.PUBLISHED

    @property
    def published_at(self) -> dt.datetime:
        return NOW - dt.timedelta(hours=7 * self.i)

    @property
    def data_updated_at(self) -> dt.datetime | None:
        return None if self.i % 2 else NOW - dt.timedelta(hours=3 * self.i)

    def spec(self) -> EntrySpec:
        fields = [FieldSpec("item_a", "事项" if self.i % 17 else "学生学籍", level=1),
                  FieldSpec("item_b", "指标", level=self.level)]  # fmt: skip
        basis = "" if self.share is ShareClass.UNCONDITIONAL else "《浙江省公共数据条例》"
        return EntrySpec(
            code=self.code, name=self.name, provider=PROVIDERS[self.provider][1], fields=fields,
            abstract=f"摘要 {self.i}", category_class="基础", region_code=self.region,
            share_class=self.share, legal_basis=basis, share_conditions=basis,
            open_class=self.opening, update_cycle=self.cycle,
        )  # fmt: skip


def build(workspace: Workspace, count: int) -> list[Fact]:
    facts = [Fact(i) for i in range(count)]
    with workspace.sessions() as s, s.begin():
        for name, short, division, body in PROVIDERS:
            uscc = make_uscc("11", division, body)
            persons = {"head_name": "负责人", "security_officer_name": "安全员"}
            org = OrganisationSpec(name, OrgType.STATE_ORGAN, uscc, division, short, **persons)
            register_organisation(s, org, "admin")
        for fact in facts:
            create_entry(s, fact.spec(), "admin", SETTINGS)
            if fact.state is not EntryState.DRAFT:
                publish_entry(s, fact.code, "admin", SETTINGS)
            if fact.state is EntryState.RETIRED:
                retire_entry(s, fact.code, "admin")
        s.flush()
        for entry in s.scalars(select(CatalogEntry)):
            fact = Fact(int(entry.code[4:]))
            if entry.state is not EntryState.DRAFT:
                entry.published_at, entry.data_updated_at = fact.published_at, fact.data_updated_at
    return facts


def within(fact: Fact, region: str) -> bool:
    """What a user of `region` expects: its own and lower regions, and the regions above it."""
    prefix = {"330102": "330102", "3304": "3304", "33": "33", "330102001000": "330102001"}[region]
    above = {"330102": {"330100000000", "330000000000"}, "3304": {"330000000000"}, "33": set(),
             "330102001000": {"330102000000", "330100000000", "330000000000"}}[region]  # fmt: skip
    return fact.region.startswith(prefix) or fact.region in above


def codes(session: Session, query: EntryQuery, now: dt.datetime = NOW) -> list[str]:
    query.limit = 1000
    page, total = search_entries(session, query, now)
    assert total == len(page)
    return [e.code for e in page]


def expected(facts: list[Fact], keep: Callable[[Fact], bool]) -> list[str]:
    return sorted(f.code for f in facts if keep(f))


def check_filters(session: Session, facts: list[Fact]) -> None:
    """Every filter against the facts; shared by the SQLite and PostgreSQL runs."""
    assert codes(session, EntryQuery()) == expected(facts, lambda f: True)
    for share in ShareClass:
        assert codes(session, EntryQuery(share_class=share)) == expected(
            facts, lambda f, share=share: f.share is share
        )
    for opening in OpenClass:
        got = codes(session, EntryQuery(open_class=opening))
        assert got == expected(facts, lambda f, opening=opening: f.opening is opening)
    for level in (1, 2, 3, 4):
        assert codes(session, EntryQuery(level=level)) == expected(
            facts, lambda f, level=level: f.level == level
        )
    for state in EntryState:
        assert codes(session, EntryQuery(state=state)) == expected(
            facts, lambda f, state=state: f.state is state
        )
    for index, (name, short, _, _) in enumerate(PROVIDERS):
        want = expected(facts, lambda f, index=index: f.provider == index)
        assert codes(session, EntryQuery(provider=short)) == want
        assert codes(session, EntryQuery(provider=name[:4])) == want
    for region in ("330102", "3304", "33", "330102001000"):
        assert codes(session, EntryQuery(region=region)) == expected(
            facts, lambda f, region=region: within(f, region)
        )
    assert codes(session, EntryQuery(text="学校")) == expected(facts, lambda f: "学校" in f.name)
    assert codes(session, EntryQuery(text="学籍")) == expected(facts, lambda f: f.i % 17 == 0)
    assert codes(session, EntryQuery(text="%_")) == ["res_0007"], "LIKE wildcards are searched literally"
    assert codes(session, EntryQuery(text="RES_0012")) == ["res_0012"]
    for now in (NOW, NOW + dt.timedelta(days=3), NOW + dt.timedelta(days=40)):
        entries = {e.code: e for e in search_entries(session, EntryQuery(limit=1000), now)[0]}
        late = sorted(code for code, e in entries.items() if is_overdue(e, now))
        assert codes(session, EntryQuery(overdue=True), now) == late
        assert codes(session, EntryQuery(overdue=False), now) == sorted(set(entries) - set(late))
    combined = EntryQuery(region="330102", share_class=ShareClass.RESTRICTED, state=EntryState.PUBLISHED)
    assert codes(session, combined) == expected(
        facts,
        lambda f: (
            within(f, "330102") and f.share is ShareClass.RESTRICTED and f.state is EntryState.PUBLISHED
        ),
    )


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, list[Fact]]:
    workspace = Workspace.init(tmp_path_factory.mktemp("search") / "home")
    return workspace, build(workspace, 300)


def test_every_filter_matches_the_facts(catalogue: tuple[Workspace, list[Fact]]) -> None:
    workspace, facts = catalogue
    with workspace.sessions() as s:
        check_filters(s, facts)


def test_pages_cover_the_result_once_in_order(catalogue: tuple[Workspace, list[Fact]]) -> None:
    workspace, facts = catalogue
    want = expected(facts, lambda f: f.state is EntryState.PUBLISHED)
    seen: list[str] = []
    with workspace.sessions() as s:
        for offset in range(0, len(want) + 40, 37):
            page, total = search_entries(s, EntryQuery(state=EntryState.PUBLISHED, offset=offset, limit=37))
            assert total == len(want)
            seen += [e.code for e in page]
        assert search_entries(s, EntryQuery(offset=10_000))[0] == []
        with pytest.raises(InputError):
            search_entries(s, EntryQuery(limit=0))
    assert seen == want


def test_search_loads_fields_and_providers_without_a_query_per_entry(
    catalogue: tuple[Workspace, list[Fact]],
) -> None:
    workspace, _ = catalogue
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(workspace.engine, "before_cursor_execute", count)
    try:
        with workspace.sessions() as s:
            page, _ = search_entries(s, EntryQuery(limit=200))
            assert sum(len(e.fields) for e in page) == 400
            assert len({e.provider.name for e in page}) == 3
    finally:
        event.remove(workspace.engine, "before_cursor_execute", count)
    assert len(statements) <= 4, statements


@pytest.mark.req("REQ-11", "overdue")
def test_overdue_counts_from_the_last_load_else_from_publication(session: Session) -> None:
    uscc = make_uscc("11", "330100", "00000009")
    org = OrganisationSpec("杭州市统计局", OrgType.STATE_ORGAN, uscc, "330100", None, False, "a", None, "b")
    register_organisation(session, org, "admin")
    spec = Fact(1).spec()
    spec.provider, spec.update_cycle = "杭州市统计局", UpdateCycle.DAILY
    entry = create_entry(session, spec, "admin", SETTINGS)
    assert not is_overdue(entry, NOW + dt.timedelta(days=400)), "a draft is never overdue"
    publish_entry(session, spec.code, "admin", SETTINGS)
    entry.published_at = NOW - dt.timedelta(days=1)
    assert not is_overdue(entry, NOW)
    assert is_overdue(entry, NOW + dt.timedelta(seconds=1))
    assert not is_overdue(entry, NOW + dt.timedelta(seconds=1), grace_days=1)
    entry.data_updated_at = NOW - dt.timedelta(hours=2)
    assert not is_overdue(entry, NOW + dt.timedelta(hours=21))
    assert is_overdue(entry, NOW + dt.timedelta(hours=23))
    entry.update_cycle = UpdateCycle.MONTHLY
    assert not is_overdue(entry, NOW + dt.timedelta(days=30))
    assert is_overdue(entry, NOW + dt.timedelta(days=31))
    naive = (NOW + dt.timedelta(days=31)).replace(tzinfo=None)
    assert is_overdue(entry, naive), "naive times are UTC"
    entry.update_cycle = UpdateCycle.IRREGULAR
    assert not is_overdue(entry, NOW + dt.timedelta(days=10_000))
    session.flush()
    entry.update_cycle = UpdateCycle.YEARLY
    session.flush()
    late = search_entries(session, EntryQuery(overdue=True), NOW + dt.timedelta(days=367))[0]
    assert [e.code for e in late] == [spec.code]
    assert search_entries(session, EntryQuery(overdue=True), NOW + dt.timedelta(days=365))[1] == 0
    retire_entry(session, spec.code, "admin")
    assert not is_overdue(get_entry(session, spec.code), NOW + dt.timedelta(days=10_000))


def test_unknown_region_prefix_is_refused(catalogue: tuple[Workspace, list[Fact]]) -> None:
    workspace, _ = catalogue
    with workspace.sessions() as s, pytest.raises(InputError):
        search_entries(s, EntryQuery(region="hangzhou"))


def test_search_and_refusal_audit_on_postgres(pg_workspace: Workspace) -> None:
    facts = build(pg_workspace, 60)
    with pg_workspace.sessions() as s:
        check_filters(s, facts)
    classified = Fact(999).spec()
    classified.classified = True
    with pytest.raises(Exception, match="REQ-1"), pg_workspace.sessions() as s, s.begin():
        create_entry(s, classified, "clerk", SETTINGS)
    with pg_workspace.sessions() as s:
        assert get_entry(s, "res_0001").code == "res_0001"
        refused = s.execute(text("SELECT target FROM audit_events WHERE outcome = 'refused'")).scalars().all()
        assert refused == ["res_0999"]
