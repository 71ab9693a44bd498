"""Time counted in support hours only (DISCORD_SUPPORT_HOURS in DISCORD_SUPPORT_TIMEZONE, read by support/hours.py):
an SLA clock stops when staff are off. With no hours configured, support time is wall-clock time."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings

from .hours import next_staffed_time, parse_hours

MAX_DAYS = 400  # a deadline further away than this is not a support-hours deadline worth computing


def _intervals_from(start: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The support-hours intervals (aware, in the support time zone) from the day of `start` on, in order."""
    windows = parse_hours(settings.DISCORD_SUPPORT_HOURS)
    zone = ZoneInfo(settings.DISCORD_SUPPORT_TIMEZONE)
    first_day = start.astimezone(zone).date()
    for offset in range(MAX_DAYS):
        day = first_day + timedelta(days=offset)
        for window in sorted((w for w in windows if w.weekday == day.weekday()), key=lambda w: w.start):
            yield datetime.combine(day, window.start, tzinfo=zone), datetime.combine(day, window.end, tzinfo=zone)


def hours_configured() -> bool:
    return bool(parse_hours(settings.DISCORD_SUPPORT_HOURS))


def support_seconds_between(start: datetime, end: datetime) -> int:
    """Seconds of support hours between two moments (0 when `end` is not after `start`)."""
    if end <= start:
        return 0
    if not hours_configured():
        return int((end - start).total_seconds())
    total = 0.0
    for opens, closes in _intervals_from(start):
        if opens >= end:
            break
        overlap = (min(closes, end) - max(opens, start)).total_seconds()
        total += max(overlap, 0)
    return int(total)


def support_deadline(start: datetime, seconds: int) -> datetime | None:
    """The moment `seconds` of support hours have passed since `start` (None past MAX_DAYS)."""
    if not hours_configured():
        return start + timedelta(seconds=seconds)
    remaining = float(seconds)
    for opens, closes in _intervals_from(start):
        if closes <= start:
            continue
        begin = max(opens, start)
        length = (closes - begin).total_seconds()
        if remaining <= length:
            return begin + timedelta(seconds=remaining)
        remaining -= length
    return None


def in_support_hours(moment: datetime) -> bool:
    """Staff are on duty at `moment` (always, with no hours configured)."""
    return next_staffed_time(moment) is None
