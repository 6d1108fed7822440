"""Business time: the SPEC 4 reference table, clock changes, and properties over many zones."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain.calendar import (
    add_business_days,
    add_business_hours,
    add_business_time,
    add_months,
    business_time_between,
    days_between_local,
    is_business_time,
    local_date,
    next_business_instant,
    same_local_day,
    zone_or_error,
)
from gateway.domain.errors import UserError

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
SANTIAGO = "America/Santiago"
TEHRAN = "Asia/Tehran"
APIA = "Pacific/Apia"
ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "America/Santiago",
    "Asia/Tokyo",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "UTC",
    "Asia/Kathmandu",
]
US = timedelta(microseconds=1)


def at(
    zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, fold: int = 0
) -> datetime:
    """A local wall time in `zone`, as an aware datetime."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone), fold=fold)


def wall(instant: datetime, zone: str) -> datetime:
    return instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


# --- SPEC 4 reference table (vendor in Europe/Berlin) -------------------------------------


@pytest.mark.parametrize(
    ("created", "plus_24h", "plus_5d"),
    [
        # Thu 10:00 -> Fri 10:00 | next Thu 10:00
        (datetime(2024, 5, 16, 10), datetime(2024, 5, 17, 10), datetime(2024, 5, 23, 10)),
        # Fri 16:00 -> Mon 16:00 | next Fri 16:00
        (datetime(2024, 5, 17, 16), datetime(2024, 5, 20, 16), datetime(2024, 5, 24, 16)),
        # Sat 10:00 -> Tue 00:00 | the following Sat 00:00 (the end of Friday)
        (datetime(2024, 5, 18, 10), datetime(2024, 5, 21, 0), datetime(2024, 5, 25, 0)),
    ],
)
def test_reference_table(created: datetime, plus_24h: datetime, plus_5d: datetime) -> None:
    start = created.replace(tzinfo=ZoneInfo(BERLIN))
    assert wall(add_business_hours(start, 24, BERLIN), BERLIN) == plus_24h
    assert wall(add_business_days(start, 5, BERLIN), BERLIN) == plus_5d


def test_reference_table_friday_before_clocks_go_back() -> None:
    # Clocks go back on Sunday 27 October 2024: 24 business hours, one extra real hour between.
    start = at(BERLIN, 2024, 10, 25, 16)
    due = add_business_hours(start, 24, BERLIN)
    assert wall(due, BERLIN) == datetime(2024, 10, 28, 16)
    assert due - start == timedelta(hours=24 + 48 + 1)


def test_result_is_in_utc() -> None:
    due = add_business_hours(at(BERLIN, 2024, 5, 16, 10), 24, BERLIN)
    assert due.tzinfo is UTC
    assert due == datetime(2024, 5, 17, 8, tzinfo=UTC)


def test_forty_eight_business_hours_from_thursday() -> None:
    due = add_business_hours(at(BERLIN, 2024, 5, 16, 10), 48, BERLIN)
    assert wall(due, BERLIN) == datetime(2024, 5, 20, 10)


# --- where a deadline may fall -------------------------------------------------------------


def test_deadline_reaching_friday_midnight_is_saturday_0000_not_monday() -> None:
    due = add_business_hours(at(BERLIN, 2024, 5, 17, 23), 1, BERLIN)
    assert wall(due, BERLIN) == datetime(2024, 5, 18, 0)


def test_a_microsecond_past_friday_lands_on_monday() -> None:
    due = add_business_time(at(BERLIN, 2024, 5, 17, 23), timedelta(hours=1) + US, BERLIN)
    assert wall(due, BERLIN) == datetime(2024, 5, 20, 0, 0, 0, 1)


def test_zero_duration_inside_a_weekend_moves_to_monday() -> None:
    assert wall(add_business_time(at(BERLIN, 2024, 5, 19, 12), timedelta(0), BERLIN), BERLIN) == (
        datetime(2024, 5, 20, 0)
    )


def test_zero_duration_on_a_weekday_or_at_saturday_0000_stays() -> None:
    for start in (at(BERLIN, 2024, 5, 15, 12), at(BERLIN, 2024, 5, 18, 0)):
        assert add_business_time(start, timedelta(0), BERLIN) == start


def test_ten_years_of_business_days_ends_on_the_right_saturday() -> None:
    monday = at(BERLIN, 2024, 1, 1)
    due = add_business_days(monday, 5 * 520, BERLIN)
    assert wall(due, BERLIN) == datetime(2024, 1, 1) + timedelta(weeks=519, days=5)


# --- clock changes -------------------------------------------------------------------------


def test_berlin_spring_forward_weekend() -> None:
    # Clocks go forward on Sunday 31 March 2024.
    start = at(BERLIN, 2024, 3, 29, 16)
    due = add_business_hours(start, 24, BERLIN)
    assert wall(due, BERLIN) == datetime(2024, 4, 1, 16)
    assert due - start == timedelta(hours=24 + 48 - 1)


@pytest.mark.parametrize("monday", [date(2024, 3, 25), date(2024, 10, 21), date(2024, 3, 4)])
def test_berlin_business_week_is_120_hours_whatever_the_weekend(monday: date) -> None:
    start = datetime.combine(monday, time(), ZoneInfo(BERLIN))
    assert business_time_between(start, start + timedelta(days=14), BERLIN) == timedelta(hours=240)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        # US clocks change on Sunday 02:00: 10 March 2024 forward, 3 November 2024 back.
        (datetime(2024, 3, 8, 16), datetime(2024, 3, 11, 16)),
        (datetime(2024, 11, 1, 16), datetime(2024, 11, 4, 16)),
    ],
)
def test_new_york_friday_across_clock_change(start: datetime, expected: datetime) -> None:
    due = add_business_hours(start.replace(tzinfo=ZoneInfo(NEW_YORK)), 24, NEW_YORK)
    assert wall(due, NEW_YORK) == expected


@pytest.mark.parametrize(
    ("start", "real_hours"),
    [(datetime(2024, 3, 6, 12), 7 * 24 - 1), (datetime(2024, 10, 30, 12), 7 * 24 + 1)],
)
def test_new_york_midweek_duration_spanning_clock_change(start: datetime, real_hours: int) -> None:
    begin = start.replace(tzinfo=ZoneInfo(NEW_YORK))
    due = add_business_days(begin, 5, NEW_YORK)
    assert wall(due, NEW_YORK) == start + timedelta(days=7)
    assert due - begin == timedelta(hours=real_hours)
    assert business_time_between(begin, due, NEW_YORK) == timedelta(days=5)


def test_santiago_clocks_back_at_saturday_midnight() -> None:
    # 2 April 2023: Sunday 00:00 -03 becomes Saturday 23:00 -04; Saturday 23:xx happens twice.
    assert wall(add_business_hours(at(SANTIAGO, 2023, 3, 31, 16), 24, SANTIAGO), SANTIAGO) == (
        datetime(2023, 4, 3, 16)
    )
    assert wall(add_business_hours(at(SANTIAGO, 2023, 3, 31, 23), 1, SANTIAGO), SANTIAGO) == (
        datetime(2023, 4, 1, 0)
    )
    for fold in (0, 1):
        assert not is_business_time(at(SANTIAGO, 2023, 4, 1, 23, 30, fold=fold), SANTIAGO)
    weekend = business_time_between(
        at(SANTIAGO, 2023, 4, 1, 0), at(SANTIAGO, 2023, 4, 3, 0), SANTIAGO
    )
    assert weekend == timedelta(0)


def test_santiago_clocks_forward_at_saturday_midnight() -> None:
    # 3 September 2023: local Sunday 00:00 does not exist (Saturday 23:59 -04 -> Sunday 01:00).
    assert wall(add_business_hours(at(SANTIAGO, 2023, 9, 1, 16), 24, SANTIAGO), SANTIAGO) == (
        datetime(2023, 9, 4, 16)
    )
    monday = next_business_instant(at(SANTIAGO, 2023, 9, 3, 1, 30), SANTIAGO)
    assert wall(monday, SANTIAGO) == datetime(2023, 9, 4, 0)


def test_monday_midnight_that_does_not_exist_starts_when_clocks_jump() -> None:
    # Tehran, 22 March 2021 (a Monday): 00:00 +0330 became 01:00 +0430 at 20:30 UTC.
    sunday_night = at(TEHRAN, 2021, 3, 21, 23, 30)
    jump = datetime(2021, 3, 21, 20, 30, tzinfo=UTC)
    assert next_business_instant(sunday_night, TEHRAN) == jump
    assert not is_business_time(jump - US, TEHRAN)
    assert is_business_time(jump, TEHRAN)
    assert add_business_hours(sunday_night, 1, TEHRAN) == jump + timedelta(hours=1)


def test_monday_midnight_inside_a_gap_starts_when_clocks_jump() -> None:
    # Toronto, 31 March 1919: Sunday 23:30 EST became Monday 00:30 EDT at 04:30 UTC, so no
    # reading of "Monday 00:00" with either offset gives the start of the week.
    toronto = "America/Toronto"
    jump = datetime(1919, 3, 31, 4, 30, tzinfo=UTC)
    assert next_business_instant(at(toronto, 1919, 3, 30, 23, 15), toronto) == jump
    assert not is_business_time(jump - US, toronto)
    assert is_business_time(jump, toronto)


def test_friday_midnight_that_repeats_ends_friday_at_the_last_crossing() -> None:
    # Tehran, 22 September 2018 (a Saturday): at 24:00 +0430 on Friday the clocks went back to
    # 23:00 +0330, so Friday had 25 hours and Saturday 00:00 was reached at 20:30 UTC.
    friday = at(TEHRAN, 2018, 9, 21)
    saturday = datetime(2018, 9, 21, 20, 30, tzinfo=UTC)
    assert business_time_between(friday, friday + timedelta(days=2), TEHRAN) == timedelta(hours=25)
    assert add_business_hours(friday, 25, TEHRAN) == saturday
    assert is_business_time(at(TEHRAN, 2018, 9, 21, 23, 30, fold=1), TEHRAN)
    assert not is_business_time(saturday, TEHRAN)


def test_a_skipped_friday_shortens_the_week() -> None:
    # Samoa skipped Friday 30 December 2011 when it crossed the date line.
    monday = at(APIA, 2011, 12, 26)
    week = business_time_between(monday, at(APIA, 2011, 12, 31), APIA)
    assert week == timedelta(days=4)
    assert wall(add_business_days(monday, 5, APIA), APIA) == datetime(2012, 1, 3)


# --- the weekend pause switched off --------------------------------------------------------


def test_without_weekend_pause_it_is_plain_real_time() -> None:
    # Saturday before the US spring change: 24 real hours is 25 hours of wall time. (In UTC,
    # as adding to a zoned datetime would move its wall clock instead.)
    start = at(NEW_YORK, 2024, 3, 9, 12).astimezone(UTC)
    due = add_business_hours(start, 24, NEW_YORK, weekend_pause=False)
    assert due == start + timedelta(hours=24)
    assert wall(due, NEW_YORK) == datetime(2024, 3, 10, 13)
    assert due.tzinfo is UTC
    assert add_business_days(start, 5, NEW_YORK, weekend_pause=False) == start + timedelta(5)
    assert business_time_between(
        start, start + timedelta(days=3), NEW_YORK, weekend_pause=False
    ) == timedelta(days=3)
    assert next_business_instant(start, NEW_YORK, weekend_pause=False) == start


# --- queries -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2024, 5, 17, 23, 59, 59, 999999), True),
        (datetime(2024, 5, 18, 0), False),
        (datetime(2024, 5, 19, 23, 59), False),
        (datetime(2024, 5, 20, 0), True),
        (datetime(2024, 5, 15, 12), True),
    ],
)
def test_is_business_time(local: datetime, expected: bool) -> None:
    assert is_business_time(local.replace(tzinfo=ZoneInfo(BERLIN)), BERLIN) is expected


def test_next_business_instant() -> None:
    wednesday = at(BERLIN, 2024, 5, 15, 12)
    assert next_business_instant(wednesday, BERLIN) == wednesday
    assert next_business_instant(wednesday, BERLIN).tzinfo is UTC
    for weekend in (at(BERLIN, 2024, 5, 18, 0), at(BERLIN, 2024, 5, 19, 23, 59)):
        assert wall(next_business_instant(weekend, BERLIN), BERLIN) == datetime(2024, 5, 20)


def test_business_time_between_is_zero_when_end_not_after_start() -> None:
    start = at(BERLIN, 2024, 5, 15, 12)
    assert business_time_between(start, start, BERLIN) == timedelta(0)
    assert business_time_between(start, start - timedelta(hours=5), BERLIN) == timedelta(0)


def test_local_dates() -> None:
    # 23:30 UTC on 31 May is already 1 June in Berlin.
    late = datetime(2024, 5, 31, 23, 30, tzinfo=UTC)
    assert local_date(late, BERLIN) == date(2024, 6, 1)
    assert local_date(late, "UTC") == date(2024, 5, 31)
    assert same_local_day(late, at(BERLIN, 2024, 6, 1, 20), BERLIN)
    assert not same_local_day(late, at(BERLIN, 2024, 6, 1, 20), "UTC")


def test_days_between_local_counts_the_start_day_as_day_zero() -> None:
    purchase = at(BERLIN, 2024, 1, 1, 23, 30)
    assert days_between_local(purchase, at(BERLIN, 2024, 1, 2, 0, 10), BERLIN) == 1
    assert days_between_local(purchase, at(BERLIN, 2024, 1, 1, 0, 0), BERLIN) == 0
    assert days_between_local(purchase, at(BERLIN, 2024, 3, 1, 23), BERLIN) == 60
    assert days_between_local(purchase, at(BERLIN, 2024, 3, 2, 0), BERLIN) == 61
    assert days_between_local(at(BERLIN, 2024, 1, 5), purchase, BERLIN) == -4


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2024, 1, 15), 1, date(2024, 2, 15)),
        (date(2024, 12, 31), 1, date(2025, 1, 31)),
        (date(2024, 8, 31), 6, date(2025, 2, 28)),
        (date(2024, 3, 31), -1, date(2024, 2, 29)),
        (date(2024, 1, 31), -2, date(2023, 11, 30)),
        (date(2024, 5, 10), 0, date(2024, 5, 10)),
        (date(2024, 11, 30), 13, date(2025, 12, 30)),
    ],
)
def test_add_months(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Europe/Nowhere", "", "Europe", "../etc/passwd", "CET/x"])
def test_unknown_zone_is_a_user_error(name: str) -> None:
    with pytest.raises(UserError) as caught:
        zone_or_error(name)
    assert caught.value.message == (
        f"unknown time zone '{name}': use an IANA name such as Europe/Paris"
    )
    with pytest.raises(UserError):
        add_business_hours(at(BERLIN, 2024, 5, 15), 1, name)


def test_known_zone() -> None:
    assert zone_or_error("Asia/Kathmandu") == ZoneInfo("Asia/Kathmandu")


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2024, 5, 15, 12)
    aware = at(BERLIN, 2024, 5, 15, 12)
    calls: list[Callable[[], object]] = [
        lambda: add_business_time(naive, timedelta(hours=1), BERLIN),
        lambda: add_business_hours(naive, 1, BERLIN, weekend_pause=False),
        lambda: add_business_days(naive, 1, BERLIN),
        lambda: business_time_between(naive, aware, BERLIN),
        lambda: business_time_between(aware, naive, BERLIN),
        lambda: next_business_instant(naive, BERLIN),
        lambda: is_business_time(naive, BERLIN),
        lambda: local_date(naive, BERLIN),
        lambda: same_local_day(aware, naive, BERLIN),
        lambda: days_between_local(naive, aware, BERLIN),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="timezone-aware"):
            call()


def test_negative_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_business_hours(at(BERLIN, 2024, 5, 15), -1, BERLIN)


def test_any_aware_tzinfo_is_accepted() -> None:
    start = datetime(2024, 5, 16, 10, tzinfo=timezone(timedelta(hours=2)))
    assert add_business_hours(start, 24, BERLIN) == datetime(2024, 5, 17, 8, tzinfo=UTC)


# --- properties ----------------------------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)
zones = st.sampled_from(ZONES)
durations = st.one_of(
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3 * 365)),
    st.builds(timedelta, hours=st.integers(min_value=0, max_value=200)),
    st.just(timedelta(0)),
)
# Long durations walk a week at a time; no wall-clock deadline so slow CI machines do not flake.
props = settings(deadline=None, max_examples=150)


def strictly_in_weekend(instant: datetime, zone: str) -> bool:
    # For the zones above, local weekday alone decides (their clocks never change at Monday or
    # Saturday midnight between 2000 and 2040), so this is independent of the module's edges.
    local = instant.astimezone(ZoneInfo(zone))
    return local.weekday() >= 5 and not (local.weekday() == 5 and local.time() == time(0))


def slow_business_time(start: datetime, end: datetime, zone: str) -> timedelta:
    """Reference: walk UTC quarter-hours (local midnights and clock changes of ZONES fall on
    them) and count each piece whose local weekday is Monday to Friday."""
    tz = ZoneInfo(zone)
    total = timedelta(0)
    cursor = start
    quarter = timedelta(minutes=15)
    while cursor < end:
        floor = cursor.replace(minute=cursor.minute - cursor.minute % 15, second=0, microsecond=0)
        step_end = min(end, floor + quarter)
        if cursor.astimezone(tz).weekday() < 5:
            total += step_end - cursor
        cursor = step_end
    return total


@props
@given(instants, zones, durations, durations)
def test_monotonic_in_duration(start: datetime, zone: str, a: timedelta, b: timedelta) -> None:
    short, long = sorted((a, b))
    assert add_business_time(start, short, zone) <= add_business_time(start, long, zone)


@props
@given(instants, zones, durations)
def test_deadline_is_never_strictly_inside_a_weekend(
    start: datetime, zone: str, duration: timedelta
) -> None:
    assert not strictly_in_weekend(add_business_time(start, duration, zone), zone)


@props
@given(instants, zones, durations, durations)
def test_adding_twice_is_adding_the_sum(
    start: datetime, zone: str, a: timedelta, b: timedelta
) -> None:
    once = add_business_time(start, a + b, zone)
    assert add_business_time(add_business_time(start, a, zone), b, zone) == once


@props
@given(instants, zones, durations)
def test_between_undoes_add_and_the_deadline_is_the_earliest(
    start: datetime, zone: str, duration: timedelta
) -> None:
    due = add_business_time(start, duration, zone)
    assert due >= start
    assert business_time_between(start, due, zone) == duration
    if duration and due - US >= start:
        assert business_time_between(start, due - US, zone) < duration


@props
@given(instants, zones, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=21)))
def test_between_matches_a_slow_reference(start: datetime, zone: str, span: timedelta) -> None:
    assert business_time_between(start, start + span, zone) == slow_business_time(
        start, start + span, zone
    )


@props
@given(instants, zones)
def test_is_business_time_and_next_business_instant_agree_with_local_weekday(
    instant: datetime, zone: str
) -> None:
    local_weekday = instant.astimezone(ZoneInfo(zone)).weekday()
    assert is_business_time(instant, zone) is (local_weekday < 5)
    following = next_business_instant(instant, zone)
    assert following >= instant
    assert is_business_time(following, zone)
    assert business_time_between(instant, following, zone) == timedelta(0)
    if local_weekday < 5:
        assert following == instant
    else:
        assert wall(following, zone).time() == time(0)
        assert wall(following, zone).weekday() == 0


@props
@given(instants, zones, durations)
def test_without_pause_every_function_is_real_time(
    start: datetime, zone: str, duration: timedelta
) -> None:
    due = add_business_time(start, duration, zone, weekend_pause=False)
    assert due == start + duration
    assert business_time_between(start, due, zone, weekend_pause=False) == duration
