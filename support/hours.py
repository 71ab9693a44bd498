"""Support hours from settings: "mon-fri 09:00-18:00,sat 10:00-14:00" in DISCORD_SUPPORT_TIMEZONE."""

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_SPEC = re.compile(r"^(?P<days>[a-z]{3}(?:-[a-z]{3})?)\s+(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})$")


@dataclass(frozen=True)
class Window:
    weekday: int
    start: time
    end: time


def parse_hours(spec: str) -> list[Window]:
    windows = []
    for part in filter(None, (p.strip().lower() for p in spec.split(","))):
        match = _SPEC.match(part)
        if not match:
            raise ImproperlyConfigured(f"DISCORD_SUPPORT_HOURS: cannot read {part!r} (e.g. 'mon-fri 09:00-18:00')")
        first, _, last = match["days"].partition("-")
        try:
            start_day, end_day = DAYS.index(first), DAYS.index(last or first)
        except ValueError as exc:
            raise ImproperlyConfigured(f"DISCORD_SUPPORT_HOURS: unknown day in {part!r}") from exc
        start, end = time.fromisoformat(match["start"]), time.fromisoformat(match["end"])
        day = start_day
        while True:
            windows.append(Window(day, start, end))
            if day == end_day:
                break
            day = (day + 1) % 7
    return windows


def next_staffed_time(now: datetime) -> datetime | None:
    """None when staff are on duty at `now`; otherwise when they are back (aware, in the support time zone)."""
    windows = parse_hours(settings.DISCORD_SUPPORT_HOURS)
    if not windows:
        return None
    local = now.astimezone(ZoneInfo(settings.DISCORD_SUPPORT_TIMEZONE))
    for window in windows:
        if window.weekday == local.weekday() and window.start <= local.time() < window.end:
            return None
    candidates = []
    for offset in range(8):
        day = (local + timedelta(days=offset)).date()
        for window in windows:
            if window.weekday == day.weekday():
                start = datetime.combine(day, window.start, tzinfo=local.tzinfo)
                if start > local:
                    candidates.append(start)
    return min(candidates) if candidates else None
