""" "What may I see" in SQL equals the access rules applied one entry at a time, for any catalogue.

The oracle is the rule as the gateway states it (own data; unconditional sharing unless national
core or important data; an active grant through an active application; others' not-shared data only
through a grant the competent department coordinated; only published, unclassified entries),
evaluated in Python over the same rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from pubdata.catalog.classes import EntryState, NationalLevel, OrgType, ShareClass
from pubdata.db.models import Application, CatalogEntry, CatalogField, Grant, Organisation, Tenant, User
from pubdata.gateway.access_rules import AccessRule
from pubdata.gateway.roles import Principal, Role, Scope
from pubdata.gateway.visibility import visible_entry, visible_page
from pubdata.workspace import Workspace

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
WINDOWS = {
    "current": (NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=1)),
    "past": (NOW - dt.timedelta(days=9), NOW - dt.timedelta(seconds=1)),
    "future": (NOW + dt.timedelta(hours=1), NOW + dt.timedelta(days=9)),
}

entries_st = st.lists(
    st.fixed_dictionaries(
        {
            "provider": st.sampled_from([0, 1, 2]),
            "share": st.sampled_from(list(ShareClass)),
            "state": st.sampled_from(list(EntryState)),
            "classified": st.booleans(),
            "national": st.sampled_from(list(NationalLevel)),
            "field_national": st.lists(st.sampled_from(list(NationalLevel)), max_size=2),
        }
    ),
    min_size=1,
    max_size=12,
)
grants_st = st.lists(
    st.fixed_dictionaries(
        {
            "entry": st.integers(0, 11),
            "holder": st.sampled_from([0, 1]),
            "app_active": st.booleans(),
            "revoked": st.booleans(),
            "window": st.sampled_from(list(WINDOWS)),
            "coordinated": st.booleans(),
        }
    ),
    max_size=10,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, list[int]]]:
    workspace = Workspace.init(tmp_path_factory.mktemp("visibility") / "home")
    with workspace.sessions() as s, s.begin():
        tenant = s.scalars(select(Tenant).where(Tenant.division_code == "330000000000")).one()
        orgs = [
            Organisation(
                name=f"单位{i}",
                org_type=OrgType.STATE_ORGAN,
                uscc=str(i) * 18,
                division_code="330000000000",
                tenant=tenant,
            )
            for i in range(3)
        ]
        s.add_all(orgs)
        s.flush()
        org_ids = [o.id for o in orgs]
    yield workspace, org_ids
    workspace.engine.dispose()


def oracle(entries: list[CatalogEntry], grants: list[Grant], org_id: int) -> dict[str, AccessRule]:
    sensitive = {NationalLevel.CORE, NationalLevel.IMPORTANT}
    seen: dict[str, AccessRule] = {}
    for entry in entries:
        levels = {entry.national_level, *(f.national_level for f in entry.fields)}
        held = [
            g
            for g in grants
            if g.entry_id == entry.id
            and g.organisation_id == org_id
            and g.revoked_at is None
            and g.valid_from <= NOW < g.valid_until
            and g.application.active
        ]
        if entry.state is not EntryState.PUBLISHED or entry.classified:
            continue
        if entry.provider_id == org_id:
            seen[entry.code] = AccessRule.OWN_DATA
        elif entry.share_class is ShareClass.NOT_SHARED:
            # Only a grant the competent department coordinated opens others' not-shared data.
            if any(g.coordination for g in held):
                seen[entry.code] = AccessRule.GRANT
        elif held:
            seen[entry.code] = AccessRule.GRANT
        elif entry.share_class is ShareClass.UNCONDITIONAL and not levels & sensitive:
            seen[entry.code] = AccessRule.UNCONDITIONAL
    return seen


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=entries_st, grant_specs=grants_st, role=st.sampled_from([Role.CONSUMER, Role.AUDITOR]))
def test_the_sql_condition_matches_the_rules_entry_by_entry(
    world: tuple[Workspace, list[int]], entries: list[dict], grant_specs: list[dict], role: Role
) -> None:
    workspace, org_ids = world
    with workspace.sessions() as s:
        s.begin()
        try:
            rows, grants = _insert(s, org_ids, entries, grant_specs)
            caller = s.get(Organisation, org_ids[0])
            assert caller is not None
            principal = Principal(User(login="caller"), caller, frozenset({role}), frozenset(Scope))
            found = {v.entry.code: v.rule for v in visible_page(s, principal, NOW, limit=None)}
            expected = oracle(rows, grants, org_ids[0]) if role is Role.CONSUMER else {}
            assert found == expected
            # Paging in code order, three at a time, gives the same entries once each.
            paged: list[str] = []
            while True:
                page = visible_page(s, principal, NOW, after=paged[-1] if paged else None, limit=3)
                paged += [v.entry.code for v in page]
                if len(page) < 3:
                    break
            assert paged == sorted(expected)
            for entry in rows:
                one = visible_entry(s, principal, NOW, entry.code)
                assert (one.rule if one else None) == expected.get(entry.code)
        finally:
            s.rollback()


def _insert(
    s: Session, org_ids: list[int], entries: list[dict], grant_specs: list[dict]
) -> tuple[list[CatalogEntry], list[Grant]]:
    tenant_id = s.scalars(select(Tenant.id)).first()
    apps = [
        Application(code=f"app{i}-{active}", name="应用", organisation_id=org_ids[i], active=active)
        for i in (0, 1)
        for active in (True, False)
    ]
    s.add_all(apps)
    rows = []
    for n, spec in enumerate(entries):
        entry = CatalogEntry(
            code=f"e{n:02d}",
            name=f"目录{n}",
            provider_id=org_ids[spec["provider"]],
            tenant_id=tenant_id,
            share_class=spec["share"],
            state=spec["state"],
            classified=spec["classified"],
            national_level=spec["national"],
            fields=[
                CatalogField(name=f"f{k}", position=k, national_level=level)
                for k, level in enumerate(spec["field_national"])
            ],
        )
        rows.append(entry)
    s.add_all(rows)
    s.flush()
    grants = []
    for spec in grant_specs:
        if spec["entry"] >= len(rows):
            continue
        start, end = WINDOWS[spec["window"]]
        app = next(a for a in apps if a.code == f"app{spec['holder']}-{spec['app_active']}")
        grants.append(
            Grant(
                organisation_id=org_ids[spec["holder"]],
                application=app,
                entry_id=rows[spec["entry"]].id,
                fields=[],
                purpose="核查",
                valid_from=start,
                valid_until=end,
                revoked_at=NOW - dt.timedelta(hours=1) if spec["revoked"] else None,
                coordination=f"request-item:{len(grants) + 1}" if spec["coordinated"] else None,
                created_by="test",
            )
        )
    s.add_all(grants)
    s.flush()
    return rows, grants
