"""Working-day deadlines against chinesecalendar's official data for 2025–2026 (REQ-13, REQ-16)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pubdata.errors import PubdataError
from pubdata.settings import PRESETS, Deadlines, load_settings
from pubdata.workflow.working_days import (
    LOCAL_TZ,
    STEP_DEADLINES,
    CalendarYearUnknown,
    WorkCalendar,
    add_working_days,
    deadline_for,
    is_overdue,
    is_working_day,
    working_days_between,
)

# The 2026 notice as the library records it, read from its own tables rather than retyped.
SPRING_2026 = sorted(
    d for d, name in chinese_calendar.holidays.items() if d.year == 2026 and name == "Spring Festival"
)
SPRING_MAKEUP_2026 = sorted(
    d for d, name in chinese_calendar.workdays.items() if d.year == 2026 and name == "Spring Festival"
)
NATIONAL_2026 = sorted(
    d for d, name in chinese_calendar.holidays.items() if d.year == 2026 and name == "National Day"
)
NATIONAL_MAKEUP_2026 = sorted(
    d for d, name in chinese_calendar.workdays.items() if d.year == 2026 and name == "National Day"
)


def at(day: date, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=LOCAL_TZ)


def end_of(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=LOCAL_TZ)


#: The calendar of a workspace that refuses to count a year without the official notice.
STRICT = WorkCalendar(unknown_year="refuse")


def test_library_facts_about_spring_festival_2026() -> None:
    """Pins what the rest of the file relies on, so a changed calendar fails loudly here."""
    assert [date(2026, 2, 15) + timedelta(days=i) for i in range(9)] == SPRING_2026  # 15th–23rd
    assert [date(2026, 2, 14), date(2026, 2, 28)] == SPRING_MAKEUP_2026  # both Saturdays
    assert all(d.weekday() == 5 for d in SPRING_MAKEUP_2026)
    assert all(is_working_day(d) for d in SPRING_MAKEUP_2026)
    assert not any(is_working_day(d) for d in SPRING_2026)
    assert is_working_day(date(2026, 2, 13)) and is_working_day(date(2026, 2, 24))


@pytest.mark.req("REQ-13", "working-days")
@pytest.mark.req("REQ-16", "tenant-deadlines")
def test_deadline_across_spring_festival_2026() -> None:
    # Filed Thu 12 Feb: day 1 Fri 13, day 2 make-up Sat 14, then nine holidays, day 3 Tue 24 Feb.
    filed = at(date(2026, 2, 12))
    assert add_working_days(filed, 1) == end_of(date(2026, 2, 13))
    assert add_working_days(filed, 2) == end_of(date(2026, 2, 14))
    assert add_working_days(filed, 3) == end_of(date(2026, 2, 24))
    # Zhejiang's 5 WD decision: 13, 14, 24, 25, 26.
    assert deadline_for("decide", filed, PRESETS["zhejiang"]) == end_of(date(2026, 2, 26))
    # Day 7 is the second make-up Saturday, 28 Feb; day 8 is Monday 2 March.
    assert add_working_days(filed, 7) == end_of(date(2026, 2, 28))
    assert add_working_days(filed, 8) == end_of(date(2026, 3, 2))
    # Zhejiang's 10 WD coordination: ..., 2 Mar (8), 3 Mar (9), 4 Mar (10).
    assert deadline_for("coordinate", filed, PRESETS["zhejiang"]) == end_of(date(2026, 3, 4))


@pytest.mark.req("REQ-13", "working-days")
def test_filing_during_the_holiday_counts_from_the_first_working_day_after() -> None:
    for day in SPRING_2026:
        assert add_working_days(at(day), 1) == end_of(date(2026, 2, 24))
    # The whole holiday lies between the two: no working day is lost or gained.
    assert working_days_between(at(date(2026, 2, 13)), at(date(2026, 2, 24))) == 2


@pytest.mark.req("REQ-13", "working-days")
def test_deadline_across_national_day_2026() -> None:
    assert [date(2026, 10, 1) + timedelta(days=i) for i in range(7)] == NATIONAL_2026
    assert [date(2026, 9, 20), date(2026, 10, 10)] == NATIONAL_MAKEUP_2026
    filed = at(date(2026, 9, 30), 16)  # Wednesday before the holiday
    assert add_working_days(filed, 1) == end_of(date(2026, 10, 8))
    assert add_working_days(filed, 2) == end_of(date(2026, 10, 9))
    assert add_working_days(filed, 3) == end_of(date(2026, 10, 10))  # make-up Saturday
    assert add_working_days(filed, 4) == end_of(date(2026, 10, 12))


@pytest.mark.req("REQ-13", "working-days")
def test_start_on_a_make_up_sunday() -> None:
    sunday = date(2026, 9, 20)
    assert sunday.weekday() == 6 and is_working_day(sunday)
    # The make-up Sunday is the filing day, so it is not counted; Monday 21st is day 1.
    assert add_working_days(at(sunday), 1) == end_of(date(2026, 9, 21))
    # Filed the Saturday before, that Sunday itself is day 1.
    assert add_working_days(at(date(2026, 9, 19)), 1) == end_of(sunday)


@pytest.mark.req("REQ-13", "working-days")
def test_late_friday_uses_the_local_date_not_utc() -> None:
    friday_late = at(date(2026, 3, 6), 23, 30)  # 15:30 UTC, still Friday everywhere
    assert add_working_days(friday_late, 1) == end_of(date(2026, 3, 9))
    # 00:30 Saturday in Shanghai is still Friday in UTC; the Shanghai date decides.
    saturday_early = datetime(2026, 3, 6, 16, 30, tzinfo=UTC)
    assert add_working_days(saturday_early, 1) == end_of(date(2026, 3, 9))
    assert add_working_days(saturday_early, 0) == end_of(date(2026, 3, 7))


def test_result_is_aware_local_end_of_day() -> None:
    deadline = add_working_days(datetime(2026, 3, 2, 1, 0, tzinfo=UTC), 1)
    assert deadline.utcoffset() == timedelta(hours=8)
    assert deadline.astimezone(UTC) == datetime(2026, 3, 3, 15, 59, 59, tzinfo=UTC)


def test_zero_days_is_the_end_of_the_filing_day() -> None:
    assert add_working_days(at(date(2026, 2, 16)), 0) == end_of(date(2026, 2, 16))
    assert add_working_days(at(date(2026, 3, 4), 9), 0) == end_of(date(2026, 3, 4))


def test_negative_days_refused() -> None:
    with pytest.raises(PubdataError, match="non-negative"):
        add_working_days(at(date(2026, 3, 4)), -1)


def test_naive_datetimes_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        add_working_days(datetime(2026, 3, 4, 10), 1)
    with pytest.raises(ValueError):
        is_overdue(datetime(2026, 3, 4, 10), at(date(2026, 3, 4)))


@pytest.mark.req("REQ-13", "working-days")
def test_unknown_year_is_a_clear_error_when_the_workspace_refuses_to_guess() -> None:
    with pytest.raises(CalendarYearUnknown, match="2030") as caught:
        add_working_days(at(date(2030, 3, 4)), 1, calendar=STRICT)
    assert caught.value.year == 2030
    assert isinstance(caught.value, PubdataError)
    # A deadline that runs into an unknown year fails too, even when the start is known.
    with pytest.raises(CalendarYearUnknown, match="2027"):
        add_working_days(at(date(2026, 12, 30)), 5, calendar=STRICT)
    with pytest.raises(CalendarYearUnknown, match="2003"):
        is_working_day(date(2003, 6, 2), STRICT)
    with pytest.raises(CalendarYearUnknown, match="2027"):
        deadline_for("decide", at(date(2026, 12, 30)), Deadlines(unknown_year="refuse"))


@pytest.mark.req("REQ-13", "working-days")
def test_unknown_year_counts_weekdays_when_told_to_and_says_it_is_provisional() -> None:
    calendar = WorkCalendar(unknown_year="weekdays")
    # Wed 30 Dec 2026 + 5: Thu 31 (known), then Fri 1, Mon 4, Tue 5, Wed 6 Jan 2027 (Mon–Fri).
    deadline = add_working_days(at(date(2026, 12, 30)), 5, calendar=calendar)
    assert deadline == end_of(date(2027, 1, 6))
    assert calendar.provisional(deadline.date())
    assert not calendar.provisional(date(2026, 12, 31))
    assert not is_working_day(date(2027, 1, 9))  # a Saturday


@pytest.mark.req("REQ-13", "working-days")
def test_the_workspace_may_add_the_official_days_of_a_new_year(tmp_path: Path) -> None:
    settings_file = tmp_path / "pubdata.toml"
    settings_file.write_text(
        '[deadlines]\npreset = "zhejiang"\nunknown_year = "refuse"\n'
        'holidays = ["2027-01-01", "2027-01-04"]\nworkdays = ["2027-01-09"]\n',
        "utf-8",
    )
    deadlines = load_settings(settings_file).default.deadlines
    assert deadlines.check_wd == 2
    calendar = WorkCalendar.from_deadlines(deadlines)
    assert not calendar.is_working_day(date(2027, 1, 4))  # a listed holiday on a Monday
    assert calendar.is_working_day(date(2027, 1, 9))  # a listed make-up Saturday
    assert not calendar.provisional(date(2027, 3, 1))  # 2027 is now known to the workspace
    # Wed 30 Dec 2026 + 5: Thu 31, Tue 5, Wed 6, Thu 7, Fri 8 (1 and 4 Jan are holidays).
    assert deadline_for("decide", at(date(2026, 12, 30)), deadlines) == end_of(date(2027, 1, 8))
    with pytest.raises(PubdataError, match="not a date"):
        Deadlines(holidays=("2027-13-01",))
    with pytest.raises(PubdataError, match="unknown_year"):
        Deadlines(unknown_year="maybe")  # type: ignore[arg-type]


@pytest.mark.req("REQ-13", "working-days")
def test_working_days_between_is_signed() -> None:
    filed = at(date(2026, 2, 12))
    deadline = add_working_days(filed, 5)
    assert working_days_between(filed, deadline) == 5
    assert working_days_between(deadline, filed) == -5
    assert working_days_between(filed, filed) == 0
    # On the deadline's own day nothing remains; on Monday 2 March it is 3 working days overdue
    # (27 Feb, the make-up Saturday 28 Feb, 2 Mar).
    assert working_days_between(at(date(2026, 2, 26), 8), deadline) == 0
    assert working_days_between(at(date(2026, 3, 2)), deadline) == -3


def test_is_overdue_boundaries() -> None:
    deadline = end_of(date(2026, 2, 26))
    assert not is_overdue(deadline, deadline)
    assert not is_overdue(deadline, deadline + timedelta(microseconds=999_999))
    assert is_overdue(deadline, deadline + timedelta(seconds=1))
    assert not is_overdue(deadline, datetime(2026, 2, 26, 15, 59, 59, tzinfo=UTC))
    assert is_overdue(deadline, datetime(2026, 2, 26, 16, 0, 0, tzinfo=UTC))


@pytest.mark.req("REQ-13", "default-deadlines")
@pytest.mark.req("REQ-16", "tenant-deadlines")
@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("zhejiang", {"check": 2, "decide": 5, "coordinate": 10}),
        ("national", {"check": 1, "decide": 10, "coordinate": 20}),
    ],
)
def test_presets_drive_each_step(preset: str, expected: dict[str, int]) -> None:
    deadlines = PRESETS[preset]
    expected = {**expected, "objection_accept": 1, "objection_verify": 5}
    assert set(expected) == set(STEP_DEADLINES)
    filed = at(date(2026, 3, 3))
    for step, n in expected.items():
        deadline = deadline_for(step, filed, deadlines)
        assert working_days_between(filed, deadline) == n, step
        assert deadline == add_working_days(filed, n)


def test_custom_deadlines_and_unknown_step() -> None:
    custom = Deadlines(preset="custom", check_wd=3)
    filed = at(date(2026, 3, 3))
    assert deadline_for("check", filed, custom) == add_working_days(filed, 3)
    with pytest.raises(PubdataError, match=r"unknown workflow step 'approve'.*check"):
        deadline_for("approve", filed, custom)


@settings(max_examples=300, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31, 23, 59), timezones=st.just(LOCAL_TZ)
    ),
    n=st.integers(min_value=1, max_value=30),
)
@pytest.mark.req("REQ-13", "working-days")
def test_property_n_working_days_later(start: datetime, n: int) -> None:
    try:
        deadline = add_working_days(start, n, calendar=STRICT)
    except CalendarYearUnknown as exc:
        # Only a deadline that runs past the last known year may fail, and it says so: fewer than
        # n working days of 2026 remain after the start.
        remaining = sum(
            is_working_day(start.date() + timedelta(days=k))
            for k in range(1, (date(2026, 12, 31) - start.date()).days + 1)
        )
        assert exc.year == 2027 and remaining < n
        return
    assert deadline.time() == time(23, 59, 59) and deadline.tzinfo is LOCAL_TZ
    assert is_working_day(deadline.date())
    assert working_days_between(start, deadline, calendar=STRICT) == n
    assert deadline.date() > start.date()
    if n > 1:
        assert add_working_days(start, n - 1, calendar=STRICT) < deadline
