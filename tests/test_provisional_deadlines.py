"""Deadlines past the official calendar (chinesecalendar 1.11 ends with 2026): estimated holidays,
marked provisional wherever a deadline is shown, or refused when the workspace says so (REQ-13).
Every date is fixed; nothing reads the wall clock."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import chinese_calendar
import pytest
from typer.testing import CliRunner

from objections_support import COMPETENT, move, raise_on, served_record
from pubdata.cli.main import app as cli
from pubdata.clock import fixed_clock
from pubdata.demo.build import build_demo
from pubdata.settings import Deadlines
from pubdata.web import templating
from pubdata.workflow import objection_views, objections, request_views
from pubdata.workflow.holiday_estimates import LUNAR_FESTIVALS, estimate_year
from pubdata.workflow.working_days import (
    LOCAL_TZ,
    CalendarYearUnknown,
    WorkCalendar,
    add_working_days,
    deadline_for,
    deadline_is_provisional,
    is_working_day,
)
from pubdata.workspace import Workspace
from requests_support import CONSUMER, SOCIAL, file_request, principal

#: Wednesday 30 December 2026, 10:00 in Hangzhou: a check filed now is due after New Year.
FILED = datetime(2026, 12, 30, 10, tzinfo=LOCAL_TZ)


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=LOCAL_TZ)


def end_of(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=LOCAL_TZ)


@pytest.mark.req("REQ-13", "working-days")
def test_a_check_crossing_new_year_2027_skips_new_years_day_and_is_provisional() -> None:
    # Wed 30 Dec 2026 + 2: Thu 31 Dec (official), then Fri 1 Jan 2027 is New Year's Day → Mon 4 Jan.
    due = deadline_for("check", at(date(2026, 12, 30)), Deadlines())
    assert due == end_of(date(2027, 1, 4))
    assert deadline_is_provisional(due)
    # Before the estimate the same check was due on New Year's Day itself.
    weekdays = deadline_for("check", at(date(2026, 12, 30)), Deadlines(unknown_year="weekdays"))
    assert weekdays == end_of(date(2027, 1, 1)) and deadline_is_provisional(weekdays)
    # A deadline inside the official data is not provisional.
    assert not deadline_is_provisional(deadline_for("check", at(date(2026, 12, 1)), Deadlines()))


@pytest.mark.req("REQ-13", "working-days")
def test_the_spring_festival_of_2028_is_skipped() -> None:
    # 除夕 is Tue 25 Jan 2028; the break runs to 初七, Tue 1 Feb. Filed Mon 24 Jan: day 1 is Wed 2 Feb.
    assert LUNAR_FESTIVALS[2028][0] == date(2028, 1, 26)
    due = add_working_days(at(date(2028, 1, 24)), 2)
    assert due == end_of(date(2028, 2, 3))
    assert deadline_is_provisional(due)
    assert not any(is_working_day(date(2028, 1, 25) + timedelta(days=d)) for d in range(8))
    # The break's two extra weekdays are worked back on the weekends around it (Sun 23 Jan, Sat 5 Feb).
    assert is_working_day(date(2028, 1, 23)) and is_working_day(date(2028, 2, 5))


@pytest.mark.req("REQ-13", "working-days")
def test_the_refuse_setting_refuses_a_deadline_past_the_official_data() -> None:
    with pytest.raises(CalendarYearUnknown, match="2027"):
        deadline_for("check", at(date(2026, 12, 30)), Deadlines(unknown_year="refuse"))


@pytest.mark.parametrize("year", [2025, 2026])
def test_the_estimate_matches_the_official_weekday_holidays_of_2025_and_2026(year: int) -> None:
    """The pattern reproduces every weekday holiday of the two official years the package ships;
    2025's make-up Saturdays and Sundays too (2026 moved three of them by a weekend day)."""
    official = frozenset(
        d for d in chinese_calendar.get_holidays(date(year, 1, 1), date(year, 12, 31)) if d.weekday() < 5
    )
    assert estimate_year(year).holidays == official
    if year == 2025:
        made_up = chinese_calendar.get_workdays(date(year, 1, 1), date(year, 12, 31))
        assert estimate_year(year).workdays == frozenset(d for d in made_up if d.weekday() >= 5)


def test_national_day_joins_mid_autumn_when_they_are_close() -> None:
    # 2028: 中秋 is Tue 3 Oct, so the break is 1–8 October; 2027: 中秋 on Wed 15 Sep stands alone.
    holidays_2028 = estimate_year(2028).holidays
    assert {date(2028, 10, d) for d in range(2, 7)} <= holidays_2028  # the weekdays of 1–8 Oct
    assert date(2027, 9, 15) in estimate_year(2027).holidays
    assert WorkCalendar().provisional(date(2027, 9, 15))
    assert not WorkCalendar(holidays=frozenset({date(2027, 1, 1)})).provisional(date(2027, 9, 15))


def _calendar_check(home: Path, now: str, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--now", now, "calendar", "check", "--home", str(home), *extra])
    return result.exit_code, result.stdout, result.stderr


def test_the_calendar_check_warns_when_next_year_has_no_official_data(workspace: Workspace) -> None:
    code, out, err = _calendar_check(workspace.home, "2026-12-01T02:00:00Z", "--json")
    assert code == 1, out + err
    covers = {c["year"]: c for c in json.loads(out)}
    assert covers[2026]["counted_as"] == "official" and not covers[2026]["provisional"]
    assert covers[2027]["counted_as"] == "estimate" and covers[2027]["provisional"]
    assert json.loads(err)["warning"]["code"] == "calendar_year_provisional"
    code, out, err = _calendar_check(workspace.home, "2025-06-01T02:00:00Z")
    assert code == 0, out + err
    assert "follow the official calendar" in out


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    home: Path = tmp_path_factory.mktemp("provisional") / "home"
    build_demo(home, scale=0.02, clock=fixed_clock(FILED))
    return Workspace.open(home, clock=fixed_clock(FILED))


@pytest.mark.req("REQ-16", "tenant-deadlines")
def test_a_request_filed_before_new_year_shows_its_deadline_as_provisional(demo: Workspace) -> None:
    request_id = file_request(
        demo, [{"entry_code": SOCIAL, "fields": ["status"]}], now=FILED,
        valid_from=FILED, valid_until=datetime(2027, 6, 30, tzinfo=LOCAL_TZ),
    )  # fmt: skip
    with demo.sessions() as session:
        found = request_views.visible_request(session, principal(demo, CONSUMER), request_id)
        item = request_views.request_facts(found, FILED)["items"][0]
    assert item["due_at"] == end_of(date(2027, 1, 4)) and item["due_provisional"]
    for locale, label in (("zh_CN", "暂定"), ("en", "provisional")):
        page = templating.environment(locale).get_template("_countdown.html").render(item=item)
        assert label in page and 'data-provisional="true"' in page


@pytest.mark.req("REQ-13", "default-deadlines")
def test_an_objection_verified_across_new_year_shows_its_deadline_as_provisional(demo: Workspace) -> None:
    objection_id = raise_on(demo, served_record(demo), now=FILED)
    with demo.sessions() as session:
        raised = objection_views.objection_facts(objections.get_objection(session, objection_id), FILED)
    # Accepting takes one working day, Thu 31 Dec 2026: inside the official data.
    assert datetime.fromisoformat(raised["due_at"]) == end_of(date(2026, 12, 31))
    assert not raised["due_provisional"]
    accepted_at = datetime(2026, 12, 31, 10, tzinfo=LOCAL_TZ)
    move(demo, COMPETENT, "accept", objection_id, now=accepted_at)
    with demo.sessions() as session:
        found = objections.get_objection(session, objection_id)
        flagged = objection_views.objection_facts(found, accepted_at)
    # Verifying takes five: Mon 4 – Fri 8 Jan 2027, New Year's Day skipped.
    assert datetime.fromisoformat(flagged["due_at"]) == end_of(date(2027, 1, 8))
    assert flagged["due_provisional"]
    command = ["--now", accepted_at.isoformat(), "objections", "list", "--as", COMPETENT]
    listed = CliRunner().invoke(cli, [*command, "--home", str(demo.home)], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "2027-01-08 23:59（暂定）" in listed.stdout
