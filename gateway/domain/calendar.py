"""Business time: the only module that knows about weekends and time zones.

Business time is real elapsed time that falls during local Monday 00:00 - Saturday 00:00 in a
vendor's IANA zone. A week's business span runs from the first instant whose local wall time is
at or after Monday 00:00 to the first instant whose local wall time is at or after the following
Saturday 00:00. Defining the edges that way keeps them well defined in zones whose clocks change
at local midnight (America/Santiago, Asia/Tehran): a midnight that does not exist becomes the
instant the clocks jump, and a midnight that is reached, rolled back and reached again counts
from the last time the wall clock gets there for good.

Arithmetic is done in UTC on these edges, a week at a time, so long durations cost a handful
of zone look-ups per week and never a step per hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.domain.errors import UserError

_ZERO = timedelta(0)
_WEEK = timedelta(days=7)
_SATURDAY = 5


def zone_or_error(name: str) -> ZoneInfo:
    """The zone called `name`, or a UserError telling the person what to write instead."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ValueError: malformed keys such as '' or '../x'; OSError: a folder such as 'Europe'.
        raise UserError(
            f"unknown time zone '{name}': use an IANA name such as Europe/Paris"
        ) from None


def add_business_time(
    start: datetime, duration: timedelta, zone: str, *, weekend_pause: bool = True
) -> datetime:
    """The earliest instant at which `duration` of business time has passed since `start`.

    The result is never strictly inside a weekend: a zero duration that starts inside one
    lands on the next Monday 00:00. Saturday 00:00 itself is a possible result (the end of
    Friday).
    """
    at = _utc(start)
    if duration < _ZERO:
        raise ValueError(f"a business duration cannot be negative: {duration}")
    if not weekend_pause:
        return at + duration
    tz = zone_or_error(zone)
    week = _week_ending_at_or_after(at, tz)
    left = duration
    while True:
        at = max(at, week.start)
        available = week.end - at
        if left <= available:
            return at + left
        left -= available
        week = week.following(tz)


def add_business_hours(
    start: datetime, hours: float, zone: str, *, weekend_pause: bool = True
) -> datetime:
    return add_business_time(start, timedelta(hours=hours), zone, weekend_pause=weekend_pause)


def add_business_days(
    start: datetime, days: int, zone: str, *, weekend_pause: bool = True
) -> datetime:
    """`days` business days, each being 24 hours of business time (not "same time on day N")."""
    return add_business_time(start, timedelta(days=days), zone, weekend_pause=weekend_pause)


def business_time_between(
    start: datetime, end: datetime, zone: str, *, weekend_pause: bool = True
) -> timedelta:
    """Business time elapsed from `start` to `end`; zero when `end` is not after `start`."""
    begin, finish = _utc(start), _utc(end)
    if finish <= begin:
        return _ZERO
    if not weekend_pause:
        return finish - begin
    tz = zone_or_error(zone)
    week = _week_ending_at_or_after(begin, tz)
    total = _ZERO
    while week.start < finish:
        total += max(_ZERO, min(finish, week.end) - max(begin, week.start))
        week = week.following(tz)
    return total


def next_business_instant(at: datetime, zone: str, *, weekend_pause: bool = True) -> datetime:
    """`at` itself (in UTC) during business time, else the start of the next business week."""
    instant = _utc(at)
    if not weekend_pause:
        return instant
    tz = zone_or_error(zone)
    week = _week_ending_after(instant, tz)
    return max(instant, week.start)


def is_business_time(at: datetime, zone: str) -> bool:
    """Whether `at` falls in a local Monday 00:00 - Saturday 00:00 span (Saturday excluded)."""
    instant = _utc(at)
    week = _week_ending_after(instant, zone_or_error(zone))
    return week.start <= instant


def local_date(at: datetime, zone: str) -> date:
    """The calendar date on the wall clock of `zone` at `at`."""
    return _utc(at).astimezone(zone_or_error(zone)).date()


def same_local_day(a: datetime, b: datetime, zone: str) -> bool:
    return local_date(a, zone) == local_date(b, zone)


def days_between_local(start: datetime, end: datetime, zone: str) -> int:
    """Calendar dates from `start` to `end` in `zone`, `start`'s date being day 0.

    Negative when `end` falls on an earlier local date.
    """
    return (local_date(end, zone) - local_date(start, zone)).days


def add_months(d: date, months: int) -> date:
    """The same date `months` later (or earlier), clamped to the end of a shorter month."""
    index = d.year * 12 + (d.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(d.day, _days_in_month(year, month)))


def _days_in_month(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (date(year, month + 1, 1) - timedelta(days=1)).day


@dataclass(frozen=True)
class _Week:
    """One week's business span in UTC: [start, end)."""

    monday: date
    start: datetime
    end: datetime

    def following(self, tz: ZoneInfo) -> _Week:
        return _week(self.monday + _WEEK, tz)


def _week(monday: date, tz: ZoneInfo) -> _Week:
    start = _first_instant_at(datetime.combine(monday, time()), tz)
    end = _first_instant_at(datetime.combine(monday + timedelta(days=_SATURDAY), time()), tz)
    # A week cannot lose all five weekdays to clock changes; the guard keeps spans well formed.
    return _Week(monday, start, max(start, end))


def _week_ending_at_or_after(instant: datetime, tz: ZoneInfo) -> _Week:
    """The first week whose business span ends at or after `instant`."""
    week = _week_of(instant, tz)
    while week.end < instant:
        week = week.following(tz)
    return week


def _week_ending_after(instant: datetime, tz: ZoneInfo) -> _Week:
    """The first week whose business span ends strictly after `instant`."""
    week = _week_of(instant, tz)
    while week.end <= instant:
        week = week.following(tz)
    return week


def _week_of(instant: datetime, tz: ZoneInfo) -> _Week:
    # The wall clock at `instant` is at or after this Monday 00:00, so the week's start is not
    # after `instant` and no earlier week can still be running: callers only need to look ahead.
    day = instant.astimezone(tz).date()
    return _week(day - timedelta(days=day.weekday()), tz)


def _first_instant_at(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first UTC instant whose wall time in `tz` is at or after the naive `wall`."""
    # fold=0 is the first occurrence of a repeated wall time, so it is the answer whenever
    # `wall` exists at all.
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if _wall(first, tz) == wall:
        return first
    # `wall` falls in a gap: the answer is the instant the clocks jumped. fold=1 reads `wall`
    # with the offset after the jump (an instant before it), fold=0 with the offset before
    # (an instant after it); bisect between them on whole seconds, as zone transitions are.
    low = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    high = first
    if low > high:
        low, high = high, low
    while high - low > timedelta(seconds=1):
        middle = low + timedelta(seconds=(high - low) // timedelta(seconds=2))
        if _wall(middle, tz) >= wall:
            high = middle
        else:
            low = middle
    return high


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None, fold=0)


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is required, got naive {at.isoformat()}")
    return at.astimezone(UTC)
