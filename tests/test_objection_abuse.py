"""Objections (REQ-12) that cannot be abused, on the demo province: a private account cannot object
as an unverified data subject, one person and one entry take a bounded number of objections, a
burst notifies the competent department once, a foreign objection is answered exactly like a missing
one on every route, and the disputed header counts only what the caller may see."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from gateway_support import JIAXING, raw_rows
from objections_support import (
    CITIZEN,
    COMPETENT,
    CONSUMER,
    NOW,
    PARK_APP,
    PARK_PURPOSE,
    PROVIDER,
    SOCIAL,
    STRANGER,
    add_accounts,
    key_of,
    lift_objection_limits,
    move,
    principal,
    raise_on,
    served_record,
)
from pubdata.api.app import create_app
from pubdata.catalog.service import get_entry
from pubdata.clock import fixed_clock
from pubdata.db.models import AuditEvent, Notification, User
from pubdata.demo.build import build_demo
from pubdata.errors import InputError
from pubdata.gateway.engine import SandboxedEngine
from pubdata.gateway.identity import find_user, issue_token
from pubdata.gateway.query import run_query
from pubdata.gateway.roles import NotAuthorised, Scope
from pubdata.workflow import objections
from pubdata.workflow.objection_limits import ObjectionLimitReached
from pubdata.workflow.objection_raisers import (
    IdentityNotVerified,
    NotOwnRecords,
    require_own_records,
    verified_identity,
)
from pubdata.workspace import Workspace

#: The entry every organisation may object to: shared unconditionally, keyed by division and year.
STATISTICS = "zgh_member_statistics"
STATISTICS_RECORD = {"division_code": "330400000000", "year": "2024"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    home = tmp_path_factory.mktemp("objection-abuse") / "home"
    build_demo(home, scale=0.02, clock=fixed_clock(NOW))
    workspace = Workspace.open(home, clock=fixed_clock(NOW))
    add_accounts(workspace)
    # The demo flags an objection of its own on the social-insurance entry: upheld first, so that
    # the disputed records these tests count are their own.
    demo_objection = json.loads((home / "demo-accounts.json").read_text("utf-8"))["objections"]["flagged"]
    move(workspace, PROVIDER, "uphold", demo_objection, reason="核实无误，参保状态正确")
    yield workspace


@pytest.fixture
def limits(demo: Workspace) -> Iterator[Any]:
    """Sets the objection limits for one test; the settings file is as it was after it."""
    before = demo.settings_path.read_text("utf-8")
    yield lambda **given: lift_objection_limits(demo, **given)
    demo.settings_path.write_text(before, "utf-8")
    vars(demo).pop("settings", None)


def _raise(demo: Workspace, login: str, entry: str, records: list[dict[str, Any]], **kw: Any) -> int:
    with demo.sessions() as session, session.begin():
        return objections.raise_objection(
            session, principal(demo, login), entry, records, "记录有误",
            now=kw.pop("now", NOW), settings=demo.settings, **kw,
        ).id  # fmt: skip


def _refusals(demo: Workspace, login: str) -> list[str]:
    with demo.sessions() as session:
        events = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "objection.raise",
                AuditEvent.actor == login,
                AuditEvent.outcome == "refused",
            )
        )
        return [str(e.detail.get("reason")) for e in events]


def _token(demo: Workspace, login: str) -> dict[str, str]:
    with demo.sessions() as session, session.begin():
        issued = issue_token(session, login, (Scope.WORKFLOW, Scope.QUERY), 30, "test", demo.settings.default)
    return {"Authorization": f"Bearer {issued.token}"}


# --- who may object -------------------------------------------------------------------------------


def test_a_citizen_may_not_object_and_the_refusal_is_audited(demo: Workspace) -> None:
    record = served_record(demo, 60)
    with pytest.raises(IdentityNotVerified, match="verified identity"):
        raise_on(demo, record, login=CITIZEN, kind="data_subject")
    with pytest.raises(NotAuthorised, match="only staff of an organisation"):
        raise_on(demo, record, login=CITIZEN)
    assert len(_refusals(demo, CITIZEN)) == 2
    client = TestClient(create_app(demo))
    body = {
        "entry": SOCIAL,
        "records": [key_of(record)],
        "description": "不是我的信息",
        "kind": "data_subject",
    }
    answer = client.post("/api/v1/objections", json=body, headers=_token(demo, CITIZEN))
    assert answer.status_code == 403 and answer.json()["error"] == "forbidden"
    assert len(_refusals(demo, CITIZEN)) == 3


def test_a_data_subject_may_name_only_records_about_themselves(demo: Workspace) -> None:
    record = served_record(demo, 61)
    with demo.sessions() as session:
        assert verified_identity(find_user(session, CITIZEN)) is None  # no account is verified yet
        social = get_entry(session, SOCIAL)
        statistics = get_entry(session, STATISTICS)
        own = key_of(record)
        require_own_records(CITIZEN, record["id_number"].lower(), social, [own])  # same person
        someone_else = key_of(served_record(demo, 62))
        with pytest.raises(NotOwnRecords, match="record 2 is about someone else") as refused:
            require_own_records(CITIZEN, record["id_number"], social, [own, someone_else])
        assert someone_else["id_number"] not in str(refused.value)
        with pytest.raises(NotOwnRecords, match="not keyed by a person's identity number"):
            require_own_records(CITIZEN, record["id_number"], statistics, [STATISTICS_RECORD])


# --- how much ---------------------------------------------------------------------------------------


def test_an_over_long_list_of_records_is_refused_before_any_is_checked(demo: Workspace, limits: Any) -> None:
    limits(objection_max_records=3)
    junk = [{"id_number": f"x{i}", "insurance_type": "养老"} for i in range(4)]
    with pytest.raises(InputError, match="at most 3 records, not 4") as refused:
        _raise(demo, CONSUMER, SOCIAL, junk)
    assert refused.value.column == "records"
    client = TestClient(create_app(demo))
    body = {"entry": SOCIAL, "records": junk, "description": "有误"}
    answer = client.post("/api/v1/objections", json=body, headers=_token(demo, CONSUMER))
    assert answer.status_code == 400 and answer.json()["error"] == "invalid"
    assert "at most 3 records" in answer.json()["detail"]


def test_one_person_raises_a_bounded_number_of_objections_per_window(demo: Workspace, limits: Any) -> None:
    limits(objection_max_per_user=3, objection_max_per_entry=1000)
    start = NOW + dt.timedelta(days=10)
    for minute in range(3):
        _raise(demo, CONSUMER, SOCIAL, [key_of(served_record(demo, 70 + minute))],
               now=start + dt.timedelta(minutes=minute))  # fmt: skip
    later = start + dt.timedelta(hours=23)
    with pytest.raises(ObjectionLimitReached, match="raised 3 objections in the last 24 hours") as refused:
        _raise(demo, CONSUMER, STATISTICS, [STATISTICS_RECORD], now=later)  # any entry counts
    assert "2026-03-13 09:01 UTC" in str(refused.value)
    assert any("as many as one person may" in r for r in _refusals(demo, CONSUMER))
    client = TestClient(create_app(Workspace.open(demo.home, clock=fixed_clock(later))))
    body = {"entry": SOCIAL, "records": [key_of(served_record(demo, 74))], "description": "有误"}
    answer = client.post("/api/v1/objections", json=body, headers=_token(demo, CONSUMER))
    assert answer.status_code == 429 and answer.json()["error"] == "rate_limited"
    # A day after the first, its place in the window is free again.
    _raise(
        demo,
        CONSUMER,
        SOCIAL,
        [key_of(served_record(demo, 75))],
        now=start + dt.timedelta(hours=24, minutes=1),
    )


def test_one_entry_takes_a_bounded_number_of_objections_from_everyone(demo: Workspace, limits: Any) -> None:
    limits(objection_max_per_user=1000, objection_max_per_entry=2)
    start = NOW + dt.timedelta(days=20)
    _raise(demo, CONSUMER, STATISTICS, [STATISTICS_RECORD], now=start)
    _raise(demo, STRANGER, STATISTICS, [STATISTICS_RECORD], now=start + dt.timedelta(minutes=1))
    with pytest.raises(ObjectionLimitReached, match=f"entry {STATISTICS} has taken as many objections"):
        _raise(demo, CONSUMER, STATISTICS, [STATISTICS_RECORD], now=start + dt.timedelta(minutes=2))
    _raise(demo, CONSUMER, SOCIAL, [key_of(served_record(demo, 80))], now=start + dt.timedelta(minutes=3))


def test_a_burst_of_objections_notifies_the_competent_department_once(demo: Workspace, limits: Any) -> None:
    limits(objection_max_per_user=1000, objection_max_per_entry=1000)
    start = NOW + dt.timedelta(days=30)

    def told(login: str) -> int:
        with demo.sessions() as session:
            user_id = session.scalar(select(User.id).where(User.login == login))
            return (
                session.scalar(
                    select(func.count(Notification.id)).where(
                        Notification.user_id == user_id, Notification.kind == "objection.raise"
                    )
                )
                or 0
            )

    bureau, raiser = told(COMPETENT), told(CONSUMER)
    for second in range(6):
        _raise(demo, CONSUMER, SOCIAL, [key_of(served_record(demo, 90 + second))],
               now=start + dt.timedelta(seconds=second))  # fmt: skip
    assert told(COMPETENT) == bureau + 1
    assert told(CONSUMER) == raiser + 6  # the raiser still hears of each of their own


# --- what a stranger learns -------------------------------------------------------------------------


MOVES: dict[str, dict[str, Any] | None] = {
    "accept": None,
    "reject": {"reason": "无"},
    "verify-corrected": {"version": 1},
    "verify-upheld": {"reason": "无"},
    "archive": None,
}


def test_a_foreign_objection_is_answered_on_every_route_like_a_missing_one(demo: Workspace) -> None:
    foreign = raise_on(demo, served_record(demo, 100))
    missing = foreign + 10_000
    client = TestClient(create_app(demo))
    for login in (STRANGER, CITIZEN):
        headers = _token(demo, login)
        seen: set[tuple[int, str]] = set()
        for objection_id in (foreign, missing):
            read = client.get(f"/api/v1/objections/{objection_id}", headers=headers)
            assert read.status_code == 404
            for action, body in MOVES.items():
                moved = client.post(f"/api/v1/objections/{objection_id}/{action}", json=body, headers=headers)
                assert (moved.status_code, moved.json()) == (read.status_code, read.json()), action
            assert SOCIAL not in read.text
            seen.add((read.status_code, read.text.replace(str(objection_id), "<id>")))
        assert len(seen) == 1, seen
    with demo.sessions() as session:
        assert objections.get_objection(session, foreign).state == "submitted"


# --- the disputed header ----------------------------------------------------------------------------


@pytest.mark.req("REQ-12", "disputed-mark")
def test_the_disputed_header_counts_only_records_the_caller_may_see(demo: Workspace) -> None:
    rows = sorted(raw_rows(demo, SOCIAL).to_pylist(), key=lambda r: (r["id_number"], r["insurance_type"]))
    elsewhere = [key_of(r) for r in rows if not str(r["division_code"]).startswith(JIAXING)][:3]
    assert len(elsewhere) == 3
    # 嘉兴's consumer may name records of other cities: an objection is not tied to a grant's region.
    outside = _raise(demo, CONSUMER, SOCIAL, elsewhere)
    move(demo, COMPETENT, "accept", outside)

    def ask(sql: str) -> tuple[dict[str, str], dict[str, Any]]:
        with SandboxedEngine.for_workspace(demo) as engine:
            answer = run_query(
                demo, principal(demo, CONSUMER), sql, PARK_PURPOSE, PARK_APP, "json", engine=engine,
                max_rows=10_000,
            )  # fmt: skip
            return dict(answer.headers), json.loads(b"".join(answer.body))

    headers, data = ask("SELECT * FROM hrss_social_insurance")
    assert "X-Pubdata-Disputed" not in headers and "disputed" not in data  # none of 嘉兴's rows
    assert not any(row[-1] for row in data["rows"])
    inside = raise_on(demo, served_record(demo, 110))
    move(demo, COMPETENT, "accept", inside)
    headers, data = ask("SELECT * FROM hrss_social_insurance")
    assert headers["X-Pubdata-Disputed"] == f"{SOCIAL}=1"  # the entry holds 4 flagged records
    assert data["disputed"] == {SOCIAL: 1}
    assert sum(1 for row in data["rows"] if row[-1]) == 1
    headers, _ = ask("SELECT status, count(*) AS n FROM hrss_social_insurance GROUP BY status")
    assert headers["X-Pubdata-Disputed"] == f"{SOCIAL}=1"
