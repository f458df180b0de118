"""Catalogue "what may I see": a page of the entries a consumer may query, small vs large platform.

Two workspaces are filled by bulk inserts (the catalogue service would take minutes at 100 k
entries, and it is not what is measured): 1 000 entries with 100 grants, and 100 000 entries with
10 000 grants, from 100 providers. A third of the entries is unconditionally shared, a third
restricted, a third not shared; the consumer holds 1 % of the grants. Measured on each:

* ``first page``  — `visibility.visible_page`, 50 entries from the start of the code order;
* ``deep page``   — the 50 entries after a code 90 % of the way through;
* ``one entry``   — `visibility.visible_entry` for a granted entry (the entry page's question);
* ``search``      — the portal's catalogue search: a text query (``目录77``, through the FTS5
  trigram index) with two facets chosen (a provider and the sharing class), its first page of 20
  and the counts of all seven facets (`catalog.search.search_entries` + `facet_counts`). The text
  matches 11 names in the small catalogue and 1 111 in the large one, so the facet counts grow with
  the matches; ``search, one hit`` asks for one code (``entry_000777``) and shows the fixed cost.

The baseline is the same measurement on the small platform; the goal is ≤ 3× from the small to the
large case (sub-linear: the large one is 100× bigger). The previous full-list function
(``access.visible_entries``) is timed too, to show what linear looks like.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from pubdata.catalog.classes import EntryState, OrgType, ShareClass
from pubdata.catalog.search import EntryQuery, facet_counts, search_entries
from pubdata.db.models import Application, CatalogEntry, CatalogField, Grant, Organisation, Tenant, User
from pubdata.gateway.access import visible_entries
from pubdata.gateway.roles import Principal, Role, Scope
from pubdata.gateway.visibility import visible_entry, visible_page
from pubdata.workspace import Workspace

SIZES = {"small": (1_000, 100), "large": (100_000, 10_000)}
PROVIDERS = 100
SHARES = (ShareClass.UNCONDITIONAL, ShareClass.RESTRICTED, ShareClass.NOT_SHARED)
NOW = dt.datetime.now(dt.UTC)


def _uscc(n: int) -> str:
    return f"{n:018d}"


def build(home: Path, entries: int, grants: int) -> Workspace:
    """A workspace holding `entries` entries and `grants` grants (reused when it already exists)."""
    if (home / "built").exists():
        return Workspace.init(home)  # upgrades a workspace built before the search index
    workspace = Workspace.init(home)
    with workspace.sessions() as s, s.begin():
        tenant_id = s.scalars(select(Tenant.id).where(Tenant.division_code == "330000000000")).one()
        s.execute(
            insert(Organisation),
            [
                {
                    "name": f"单位{n:03d}",
                    "org_type": OrgType.STATE_ORGAN,
                    "uscc": _uscc(n),
                    "division_code": "330000000000",
                    "tenant_id": tenant_id,
                }
                for n in range(PROVIDERS + 2)
            ],
        )
        org_ids = list(s.scalars(select(Organisation.id).order_by(Organisation.id)))
        s.execute(
            insert(Application),
            [{"code": f"app{n}", "name": "应用", "organisation_id": o} for n, o in enumerate(org_ids)],
        )
        app_ids = list(s.scalars(select(Application.id).order_by(Application.id)))
        for start in range(0, entries, 10_000):
            batch = range(start, min(entries, start + 10_000))
            s.execute(
                insert(CatalogEntry),
                [
                    {
                        "code": f"entry_{n:06d}",
                        "name": f"目录{n}",
                        "provider_id": org_ids[2 + n % PROVIDERS],
                        "tenant_id": tenant_id,
                        "share_class": SHARES[n % 3],
                        "state": EntryState.PUBLISHED,
                    }
                    for n in batch
                ],
            )
        entry_ids = list(s.scalars(select(CatalogEntry.id).order_by(CatalogEntry.code)))
        for start in range(0, len(entry_ids), 10_000):
            s.execute(
                insert(CatalogField),
                [
                    {"entry_id": e, "name": f"f{k}", "position": k}
                    for e in entry_ids[start : start + 10_000]
                    for k in range(3)
                ],
            )
        holders = [0] + [2 + k for k in range(PROVIDERS)]
        rows = []
        for n in range(grants):
            holder = 0 if n % 100 == 0 else holders[1 + n % PROVIDERS]
            rows.append(
                {
                    "organisation_id": org_ids[holder],
                    "application_id": app_ids[holder],
                    "entry_id": entry_ids[(n * 7919 + 1) % len(entry_ids)],
                    "fields": ["f0"],
                    "purpose": "核查",
                    "valid_from": NOW - dt.timedelta(days=1),
                    "valid_until": NOW + dt.timedelta(days=30),
                    "created_by": "bench",
                }
            )
        s.execute(insert(Grant), rows)
    (home / "built").touch()
    return workspace


def _principal(workspace: Workspace, org_name: str) -> Principal:
    with workspace.sessions() as s:
        org = s.scalars(select(Organisation).where(Organisation.name == org_name)).one()
        s.expunge(org)
    return Principal(User(login="bench"), org, frozenset({Role.CONSUMER}), frozenset(Scope))


def _median_ms(action: Callable[[], object], repeat: int) -> float:
    action()  # warm the caches and the statement compilation
    samples = []
    for _ in range(max(repeat, 25)):  # milliseconds each: enough samples to outlast load phases
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def measure(workspace: Workspace, entries: int, repeat: int) -> dict[str, float]:
    consumer = _principal(workspace, "单位000")
    deep_after = f"entry_{int(entries * 0.9):06d}"
    assert consumer.organisation is not None
    consumer_org = consumer.organisation.id
    with workspace.sessions() as s:
        granted = s.scalars(
            select(CatalogEntry.code)
            .join(Grant, Grant.entry_id == CatalogEntry.id)
            .where(Grant.organisation_id == consumer_org)
            .where(CatalogEntry.share_class == ShareClass.RESTRICTED)
        ).first()
        assert granted is not None
        cases: dict[str, Callable[[], object]] = {
            "first page": lambda: visible_page(s, consumer, NOW, limit=50),
            "deep page": lambda: visible_page(s, consumer, NOW, after=deep_after, limit=50),
            "one entry": lambda: visible_entry(s, consumer, NOW, granted),
            "search": lambda: _search(s, "目录77"),
            "search, one hit": lambda: _search(s, "entry_000777"),
        }
        timings = {name: _median_ms(action, repeat) for name, action in cases.items()}
        timings["full list (linear reference)"] = _median_ms(lambda: visible_entries(s, consumer, NOW), 1)
    return timings


def _search(session: Session, words: str) -> object:
    """The catalogue page's question: one page and every facet's counts."""
    query = EntryQuery(
        text=words, provider=_uscc(2 + 77 % PROVIDERS), share_class=SHARES[77 % 3], limit=20,
        include_drafts=False,
    )  # fmt: skip
    return search_entries(session, query, NOW), facet_counts(session, query, NOW)


def run(workdir: Path, scale: float, repeat: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for size, (entries, grants) in SIZES.items():
        entries, grants = max(100, int(entries * scale)), max(10, int(grants * scale))
        workspace = build(workdir / f"{size}-{entries}", entries, grants)
        results[size] = {"entries": entries, "grants": grants, "ms": measure(workspace, entries, repeat)}
        workspace.engine.dispose()
    ratios = {
        case: results["large"]["ms"][case] / results["small"]["ms"][case] for case in results["small"]["ms"]
    }
    results["ratio_large_to_small"] = ratios
    _print(results)
    return results


def _print(results: dict[str, Any]) -> None:
    small, large = results["small"], results["large"]
    print(
        f"catalogue 'what may I see': small {small['entries']} entries / {small['grants']} grants, "
        f"large {large['entries']} entries / {large['grants']} grants (median ms)"
    )
    print(f"{'case':32} {'small':>10} {'large':>10} {'ratio':>8}  goal ≤ 3")
    for case, ratio in results["ratio_large_to_small"].items():
        print(f"{case:32} {small['ms'][case]:10.2f} {large['ms'][case]:10.2f} {ratio:8.2f}")
