"""One instant for every time: an aware datetime is stored as UTC on SQLite and PostgreSQL alike, comes
back aware in UTC, and is compared as the instant it is — not as the wall time it was written in."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from pubdata import audit
from pubdata.cli.main import app as cli
from pubdata.clock import fixed_clock
from pubdata.db.models import SignInFailure
from pubdata.db.types import as_utc
from pubdata.demo.build import build_demo
from pubdata.errors import InputError
from pubdata.gateway.roles import Role
from pubdata.web.work import local_date
from pubdata.workflow import request_views
from pubdata.workflow.decisions import Decision, act
from pubdata.workflow.request_states import Action
from pubdata.workspace import Workspace
from requests_support import (
    COMPETENT,
    CONSUMER,
    HRSS,
    NOW,
    PARK_APP,
    PROVIDER,
    SOCIAL,
    ensure_user,
    file_request,
    principal,
)

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
#: Midnight of 1 March 2027 in Hangzhou: 16:00 UTC the day before.
MIDNIGHT = dt.datetime(2027, 3, 1, 0, 0, tzinfo=SHANGHAI)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_workspace(request: pytest.FixtureRequest) -> Workspace:
    """A fresh workspace on each backend (PostgreSQL when ``PUBDATA_TEST_PG_URL`` is set)."""
    name = "workspace" if request.param == "sqlite" else "pg_workspace"
    found: Workspace = request.getfixturevalue(name)
    return found


def _failure(key: str, at: dt.datetime, expires_at: dt.datetime) -> SignInFailure:
    return SignInFailure(key_sha256=key.ljust(64, "0"), at=at, expires_at=expires_at)


def test_an_offset_time_comes_back_as_the_same_instant_in_utc(any_workspace: Workspace) -> None:
    with any_workspace.sessions() as s, s.begin():
        s.add(_failure("a", MIDNIGHT, MIDNIGHT + dt.timedelta(hours=1)))
    with any_workspace.sessions() as s:
        row = s.scalars(select(SignInFailure)).one()
        assert row.at == MIDNIGHT
        assert row.at.utcoffset() == dt.timedelta(0)
        assert row.at.isoformat() == "2027-02-28T16:00:00+00:00"


def test_comparisons_in_the_database_run_on_instants(any_workspace: Workspace) -> None:
    # 07:59 in Hangzhou is 23:59 UTC the day before: it expires before 00:00 UTC, whatever its wall time.
    early = dt.datetime(2027, 3, 1, 7, 59, tzinfo=SHANGHAI)
    late = dt.datetime(2027, 3, 1, 0, 30, tzinfo=dt.UTC)
    with any_workspace.sessions() as s, s.begin():
        s.add_all([_failure("early", early, early), _failure("late", late, late)])
    cut = dt.datetime(2027, 3, 1, 0, 0, tzinfo=dt.UTC)
    with any_workspace.sessions() as s:
        expired = s.scalars(select(SignInFailure.key_sha256).where(SignInFailure.expires_at < cut)).all()
        ordered = s.scalars(select(SignInFailure.key_sha256).order_by(SignInFailure.at)).all()
    assert [k.rstrip("0") for k in expired] == ["early"]
    assert [k.rstrip("0") for k in ordered] == ["early", "late"]


def test_a_naive_time_is_taken_as_utc_and_a_date_is_refused(workspace: Workspace) -> None:
    naive = dt.datetime(2027, 3, 1, 0, 0)
    with workspace.sessions() as s, s.begin():
        s.add(_failure("n", naive, naive))
    with workspace.sessions() as s:
        assert s.scalars(select(SignInFailure.at)).one() == naive.replace(tzinfo=dt.UTC)
    with pytest.raises(Exception, match="needs a datetime"), workspace.sessions() as s, s.begin():
        s.add(_failure("d", dt.date(2027, 3, 1), naive))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    home: Path = tmp_path_factory.mktemp("instants") / "home"
    build_demo(home, scale=0.02, clock=fixed_clock(NOW))
    workspace = Workspace.open(home, clock=fixed_clock(NOW))
    ensure_user(workspace, PROVIDER, HRSS, Role.PROVIDER)
    return workspace


@pytest.mark.req("REQ-16", "restricted-path")
def test_a_later_end_written_in_another_zone_is_not_narrower(demo: Workspace) -> None:
    """The period asked ends at midnight in Hangzhou; 07:59 there is eight hours later, so approving
    "until 07:59+08:00" widens the period and is refused, while 23:59 the evening before is narrower."""
    asked = dt.datetime(2026, 6, 30, 0, 0, tzinfo=SHANGHAI)
    request_id = file_request(demo, [{"entry_code": SOCIAL, "fields": ["status"]}], valid_until=asked)
    with demo.sessions() as s:
        facts = request_views.request_facts(request_views.visible_request(s, principal(demo, PROVIDER),
                                                                          request_id), NOW)  # fmt: skip
    assert facts["valid_until"] == asked
    assert facts["valid_until"].isoformat() == "2026-06-29T16:00:00+00:00"
    item_id = facts["items"][0]["id"]
    act(demo.sessions, principal(demo, COMPETENT), item_id, Action.CHECK, Decision(), demo.settings, NOW)
    wider = Decision(valid_until=dt.datetime(2026, 6, 30, 7, 59, tzinfo=SHANGHAI))
    with pytest.raises(InputError, match="cannot extend"):
        act(demo.sessions, principal(demo, PROVIDER), item_id, Action.APPROVE, wider, demo.settings, NOW)
    narrower = Decision(valid_until=dt.datetime(2026, 6, 29, 23, 59, tzinfo=SHANGHAI))
    provider = principal(demo, PROVIDER)
    shown = act(demo.sessions, provider, item_id, Action.APPROVE, narrower, demo.settings, NOW)
    assert shown["state"] == "approved"


def test_a_day_typed_in_the_portal_is_a_day_in_hangzhou() -> None:
    """The period's end keeps its whole last day there, as ``--until`` does on the command line."""
    assert local_date("2027-03-01") == MIDNIGHT
    until = local_date(" 2027-03-01 ", end=True)
    assert until is not None and until.astimezone(dt.UTC).isoformat() == "2027-03-01T15:59:59+00:00"
    assert local_date("") is None and local_date("1 March") is None


def test_audit_events_since_an_instant_in_another_zone(any_workspace: Workspace) -> None:
    with any_workspace.sessions() as s, s.begin():
        at = as_utc(audit.record(s, "tester", "catalog.create", "x").at)  # the chain keeps it naive UTC
    with any_workspace.sessions() as s:
        # Half an hour before the event, written in Hangzhou time (eight hours ahead on the wall).
        before = (at - dt.timedelta(minutes=30)).astimezone(SHANGHAI)
        after = (at + dt.timedelta(minutes=30)).astimezone(SHANGHAI)
        assert [e.action for e in audit.list_events(s, "catalog", before)] == ["catalog.create"]
        assert audit.list_events(s, "catalog", after) == []


def test_the_command_line_and_the_portal_mean_the_same_last_day(demo: Workspace) -> None:
    result = CliRunner().invoke(cli, [
        "requests", "new", "--as", CONSUMER, "--app", PARK_APP, "--legal-basis", "工会法",
        "--purpose", "核查", "--scenario", "核查", "--from", "2026-03-02", "--until", "2026-04-30",
        "--home", str(demo.home), "--now", NOW.isoformat(), "--json",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    facts = json.loads(result.output)
    until = dt.datetime.fromisoformat(facts["valid_until"])
    assert until == local_date("2026-04-30", end=True)
    assert until.astimezone(dt.UTC).isoformat() == "2026-04-30T15:59:59+00:00"
    assert dt.datetime.fromisoformat(facts["valid_from"]) == local_date("2026-03-02")
