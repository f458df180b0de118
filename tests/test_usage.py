"""Use of each entry (REQ-23): counted where the gateway audits a call, only for answers served whole,
without losing counts to concurrent calls."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from pubdata.catalog.classes import OrgType
from pubdata.catalog.service import create_entry, register_organisation
from pubdata.catalog.specs import OrganisationSpec
from pubdata.clock import Clock
from pubdata.db.models import Organisation, UsageDaily
from pubdata.demo.build import build_demo
from pubdata.demo.world import PARK_CHECK_PURPOSE
from pubdata.errors import PubdataError
from pubdata.gateway.access import AccessDenied
from pubdata.gateway.engine import SandboxedEngine
from pubdata.gateway.identity import find_user
from pubdata.gateway.query import run_query
from pubdata.gateway.roles import Principal, Scope
from pubdata.workflow.usage import count_use, usage, usage_total
from pubdata.workspace import Workspace
from workflow_world import POLICE, SETTINGS, entry_spec

SOCIAL = "hrss_social_insurance"
OUTPATIENT = "wjw_outpatient_visits"
APP = "jx_park_workers"
#: When the counted calls happen, for the tests that count without a query.
AT = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, pinned_clock: Clock) -> Workspace:
    home = tmp_path_factory.mktemp("usage") / "home"
    build_demo(home, scale=0.02, clock=pinned_clock)
    return Workspace.open(home, clock=pinned_clock)


def consumer(workspace: Workspace, login: str = "jx_zgh") -> Principal:
    with workspace.sessions() as session:
        user = find_user(session, login)
        return Principal(user, user.organisation, user.roles, frozenset(Scope))


def served_rows(workspace: Workspace, principal: Principal, sql: str, fmt: str = "json") -> int:
    with SandboxedEngine.for_workspace(workspace) as engine:
        answer = run_query(workspace, principal, sql, PARK_CHECK_PURPOSE, APP, fmt, engine=engine)
        b"".join(answer.body)
    assert answer.served.outcome == "ok"
    return answer.served.rows


@pytest.mark.req("REQ-23", "usage-measures")
def test_counters_match_what_was_served_and_refusals_do_not_count(demo: Workspace) -> None:
    principal = consumer(demo)
    rows = served_rows(demo, principal, f"SELECT name FROM {SOCIAL} LIMIT 7")
    rows += served_rows(demo, principal, f"SELECT division_code FROM {SOCIAL}")
    exported = served_rows(demo, principal, f"SELECT employer_name FROM {SOCIAL}", fmt="csv")
    with pytest.raises(AccessDenied), SandboxedEngine.for_workspace(demo) as engine:
        run_query(demo, principal, f"SELECT * FROM {OUTPATIENT}", PARK_CHECK_PURPOSE, APP, engine=engine)
    with pytest.raises(AccessDenied), SandboxedEngine.for_workspace(demo) as engine:
        run_query(demo, principal, f"SELECT * FROM {SOCIAL}", "随便看看", APP, engine=engine)
    with demo.sessions() as session:
        days = usage(session, SOCIAL)
        total = usage_total(session, SOCIAL)
        outpatient = usage_total(session, OUTPATIENT)
        org_id = principal.organisation.id if principal.organisation else None
        keys = session.execute(select(UsageDaily.consumer, UsageDaily.organisation_id)).all()
    assert [(d.queries, d.exports, d.rows, d.organisations) for d in days] == [(2, 1, rows + exported, 1)]
    assert days[0].day is not None and total.queries == 2 and total.organisations == 1
    assert rows > 7 and exported > 0 and total.public_calls == 0
    assert (outpatient.queries, outpatient.exports, outpatient.rows) == (0, 0, 0)
    assert set(keys) == {(f"org:{org_id}", org_id)}


@pytest.mark.req("REQ-23", "usage-measures")
def test_concurrent_calls_lose_no_count(demo: Workspace) -> None:
    _hammer(demo, "gat_population")


@pytest.mark.req("REQ-23", "usage-measures")
def test_concurrent_calls_lose_no_count_on_postgresql(pg_workspace: Workspace) -> None:
    with pg_workspace.sessions() as s, s.begin():
        register_organisation(
            s,
            OrganisationSpec(
                "杭州市公安局", OrgType.STATE_ORGAN, POLICE, "330100", "市公安局", head_name="张"
            ),
            "admin",
        )
        create_entry(s, entry_spec(provider="杭州市公安局"), "admin", SETTINGS)
    _hammer(pg_workspace, "population")


def _hammer(workspace: Workspace, code: str, threads: int = 6, calls: int = 20) -> None:
    with workspace.sessions() as session:
        org = session.scalars(select(Organisation).order_by(Organisation.id)).first()
        before = usage_total(session, code)
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(calls):
                kind = "export.csv" if (n + i) % 4 == 0 else "query"
                with workspace.sessions() as session, session.begin():
                    count_use(session, [code.upper()], org if n % 2 else None, kind, 3, AT)
        except BaseException as failure:
            errors.append(failure)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors
    with workspace.sessions() as session:
        after = usage_total(session, code)
    exports = sum(1 for n in range(threads) for i in range(calls) if (n + i) % 4 == 0)
    assert after.queries - before.queries == threads * calls - exports
    assert after.exports - before.exports == exports
    assert after.rows - before.rows == 3 * threads * calls
    assert after.public_calls - before.public_calls == (threads // 2) * calls


def test_a_period_the_wrong_way_round_is_refused(demo: Workspace) -> None:
    today = AT.date()
    with demo.sessions() as session, pytest.raises(PubdataError, match="after until"):
        usage(session, SOCIAL, today, today.replace(year=today.year - 1))


def test_codes_outside_the_catalogue_are_skipped(tmp_path: Path) -> None:
    workspace = Workspace.init(tmp_path / "home")
    with workspace.sessions() as s, s.begin():
        assert count_use(s, ["no_such_entry"], None, "query", 5, AT) == 0
